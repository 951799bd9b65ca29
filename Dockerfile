# telemon image: `docker compose up` builds it (docker-compose.yml); `telemon serve` runs every role.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package build needs: no tests, benchmarks or local state in the image.
WORKDIR /build
COPY pyproject.toml README.md ./
COPY telemon ./telemon
COPY ingest ./ingest
COPY alerts ./alerts
COPY clinician_ui ./clinician_ui
COPY clinic ./clinic
COPY patient_ui ./patient_ui
COPY records ./records
COPY tools ./tools
RUN pip install . && cd / && rm -rf /build

# Run unprivileged; the state directory (TELEMON_STATE_DIR) is the user's home.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/telemon --create-home --shell /usr/sbin/nologin telemon
USER telemon
WORKDIR /var/lib/telemon
# where the broker's logins are written for the broker to read (TELEMON_BROKER_PASSWORD_FILE, docker-compose.yml);
# made here so that the named volume mounted on it belongs to the telemon user
RUN mkdir /var/lib/telemon/broker

ENV TELEMON_HOST=0.0.0.0 \
    TELEMON_PORT=8000 \
    TELEMON_STATE_DIR=/var/lib/telemon
EXPOSE 8000

CMD ["telemon", "serve"]
