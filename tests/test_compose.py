"""docker-compose.yml and the Dockerfile agree with telemon's settings and with the shipped Mosquitto config."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from telemon.settings import SETTINGS, Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
DECLARED = {setting.name for setting in SETTINGS}
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}|\$\$")


def interpolate(text: str) -> str:
    """Compose's variable substitution with every variable unset: ``${X:-d}`` gives d, ``$$`` gives ``$``."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        default = match.group("default")
        assert default is not None, f"{match.group(0)} has no default: the stack would start with an empty value"
        return default

    return _VARIABLE.sub(substitute, text)


COMPOSE: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE_TEXT))
SERVICES: dict[str, Any] = COMPOSE["services"]


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def published(service: str) -> dict[int, int]:
    """Container port -> host port, from ``ports`` entries such as "8000:8000" or "127.0.0.1:5432:5432"."""
    mapping = {}
    for entry in SERVICES[service].get("ports", []):
        *_host_ip, host_port, container_port = str(entry).split(":")
        mapping[int(container_port.split("/")[0])] = int(host_port)
    return mapping


def mounts(service: str) -> dict[str, str]:
    """Container path -> source (host path resolved against the repository, or a volume name)."""
    result = {}
    for entry in SERVICES[service].get("volumes", []):
        source, target, *_mode = str(entry).split(":")
        result[target] = str((ROOT / source).resolve()) if source.startswith(".") else source
    return result


def healthcheck(service: str) -> str:
    test = SERVICES[service]["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def mosquitto_conf() -> dict[str, list[str]]:
    """The mosquitto.conf mounted into the mosquitto service: option -> values in file order."""
    path = Path(mounts("mosquitto")["/mosquitto/config/mosquitto.conf"])
    options: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            options.setdefault(key, []).append(value.strip())
    return options


def test_the_three_services_exist() -> None:
    assert {"postgres", "mosquitto", "telemon"} <= set(SERVICES)
    assert SERVICES["postgres"]["image"].startswith("postgres:16")
    assert SERVICES["mosquitto"]["image"].startswith("eclipse-mosquitto:2")
    assert SERVICES["telemon"]["build"]["dockerfile"] == "Dockerfile"
    assert (ROOT / SERVICES["telemon"]["build"]["context"] / "Dockerfile").is_file()


@pytest.mark.parametrize(("service", "port"), [("postgres", 5432), ("mosquitto", 1883), ("telemon", 8000)])
def test_ports_are_published(service: str, port: int) -> None:
    assert published(service).get(port) == port


def test_every_telemon_variable_in_the_compose_file_is_a_declared_setting() -> None:
    used = set(re.findall(r"\bTELEMON_[A-Z0-9_]+", COMPOSE_TEXT))
    assert "TELEMON_DATABASE_URL" in used
    assert used - DECLARED == set()
    for service in SERVICES:
        assert {name for name in environment(service) if not name.startswith("POSTGRES_")} <= DECLARED


def test_the_telemon_environment_is_valid_and_points_at_the_compose_services() -> None:
    env = environment("telemon")
    settings = Settings.from_env(env)
    assert settings.database_url is not None and settings.mqtt_url is not None

    database = urlsplit(settings.database_url)
    postgres = environment("postgres")
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"]
    assert database.path == "/" + postgres["POSTGRES_DB"]

    broker = urlsplit(settings.mqtt_url)
    assert (broker.scheme, broker.hostname, broker.port) == ("mqtt", "mosquitto", 1883)
    assert broker.username == "telemon"
    # The broker's password file is made from the same variable (see the mosquitto service's command).
    command = " ".join(SERVICES["mosquitto"]["command"])
    assert f"mosquitto_passwd -c -b /mosquitto/config/passwd.new telemon '{broker.password}'" in command
    # ... and from the device logins telemon keeps, on a volume both services mount (the broker read only)
    logins = settings.broker_password_file
    assert logins is not None and "/mosquitto/logins/devices.passwd" in command
    assert mounts("telemon")[str(logins.parent)] == mounts("mosquitto")["/mosquitto/logins"] in COMPOSE["volumes"]

    assert settings.host == "0.0.0.0"  # noqa: S104 - the container must listen beyond its loopback
    assert published("telemon")[settings.port] == settings.port
    assert SERVICES["telemon"]["command"] in (["telemon", "serve"], "telemon serve")


def test_telemon_starts_after_healthy_dependencies_and_reports_its_readiness() -> None:
    depends_on = SERVICES["telemon"]["depends_on"]
    assert {name: spec["condition"] for name, spec in depends_on.items()} == {
        "postgres": "service_healthy",
        "mosquitto": "service_healthy",
    }
    port = Settings.from_env(environment("telemon")).port
    check = healthcheck("telemon")
    assert f"http://127.0.0.1:{port}/readyz" in check
    assert "urllib" in check
    assert "pg_isready" in healthcheck("postgres")
    assert "mosquitto_sub" in healthcheck("mosquitto")


def test_the_broker_keeps_every_queued_message_and_requires_authentication() -> None:
    conf = mosquitto_conf()
    assert conf["max_queued_messages"] == ["0"]
    assert int(conf["max_queued_bytes"][0]) > 0  # bounded in bytes instead of silently by count
    assert int(conf["max_inflight_messages"][0]) > 0
    assert conf["persistence"] == ["true"]
    assert conf["allow_anonymous"] == ["false"]


def test_the_broker_config_files_are_where_mosquitto_conf_says() -> None:
    conf = mosquitto_conf()
    volumes = mounts("mosquitto")
    assert volumes[conf["acl_file"][0]] == str((ROOT / "deploy" / "mosquitto" / "acl").resolve())
    assert conf["password_file"] == ["/mosquitto/config/passwd"]
    # Broker persistence and database data live on named volumes, not in the containers' throwaway layers.
    data = conf["persistence_location"][0].rstrip("/")
    assert data in volumes and volumes[data] in COMPOSE["volumes"]
    assert mounts("postgres")["/var/lib/postgresql/data"] in COMPOSE["volumes"]


def test_the_dockerfile_runs_telemon_serve_as_an_unprivileged_user() -> None:
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())  # join continuation lines
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    assert re.search(r"^RUN pip install \.", text, re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'^CMD \["telemon", ?"serve"\]', text, re.MULTILINE)
    assert re.search(r"^ENV\b.*\bTELEMON_HOST=0\.0\.0\.0\b", text, re.MULTILINE)
    assert set(re.findall(r"\bTELEMON_[A-Z0-9_]+", text)) <= DECLARED
