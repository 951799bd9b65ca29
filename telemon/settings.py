"""Settings, read once from ``TELEMON_*`` environment variables.

Every setting is declared in ``SETTINGS`` (name, default, meaning); README's configuration table and the
compose file are checked against it by the tests. A wrong value raises ``SettingsError`` naming the variable.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROLES = ("api", "mqtt", "scheduler")


class SettingsError(ValueError):
    """A setting or argument has a value telemon cannot use; the message names it."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    meaning: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "TELEMON_DATABASE_URL",
        "",
        "PostgreSQL URL (`postgresql://user:pass@host:5432/db`); unset: embedded PostgreSQL in the state directory",
    ),
    Setting(
        "TELEMON_MQTT_URL",
        "",
        "MQTT broker URL (`mqtt://user:pass@host:1883`); unset: in-process amqtt broker on a free loopback port",
    ),
    Setting("TELEMON_STATE_DIR", ".telemon", "directory for the embedded PostgreSQL data and other local state"),
    Setting("TELEMON_ROLES", "api,mqtt,scheduler", "roles this process runs: any of `api`, `mqtt`, `scheduler`"),
    Setting("TELEMON_HOST", "127.0.0.1", "address the HTTP server listens on"),
    Setting("TELEMON_PORT", "8000", "port the HTTP server listens on"),
    Setting("TELEMON_LOG_LEVEL", "INFO", "log level: DEBUG, INFO, WARNING, ERROR"),
    Setting(
        "TELEMON_LOG_FORMAT",
        "auto",
        "`text` (short lines for a person), `json` (one object a line, for a log collector), or `auto`: text when "
        "stderr is a terminal, else JSON",
    ),
    Setting("TELEMON_DB_POOL_SIZE", "10", "largest number of database connections a process holds"),
    Setting(
        "TELEMON_MQTT_CLIENT_ID",
        "telemon-consumer",
        "MQTT client id of the consumer (persistent session); give each consumer its own",
    ),
    Setting(
        "TELEMON_MQTT_SHARED_GROUP",
        "",
        "shared-subscription group so several consumers split the load (`telemon` gives `$share/telemon/...`); empty: plain subscription",
    ),
    Setting("TELEMON_MAX_BATCH_READINGS", "10000", "most readings accepted in one HTTP or MQTT message"),
    Setting("TELEMON_MAX_BODY_BYTES", "5242880", "largest HTTP body or MQTT payload accepted, in bytes"),
    Setting(
        "TELEMON_SMTP_URL",
        "",
        "SMTP server for invitations and password resets (`smtp://user:pass@host:25`, `smtp+starttls://…:587`, "
        "`smtps://…:465`); unset: the dashboard shows the link to the administrator to hand over",
    ),
    Setting("TELEMON_SMTP_FROM", "telemon@localhost", "sender address of the e-mails telemon sends"),
    Setting(
        "TELEMON_PUBLIC_URL",
        "",
        "address patients' devices reach telemon's HTTP API at, printed on pairing sheets "
        "(`https://telemon.example-hospital.fr`); unset: the address the clinician's request came to",
    ),
    Setting(
        "TELEMON_PUBLIC_MQTT_URL",
        "",
        "broker address devices connect to, printed on pairing sheets (`mqtts://mqtt.example-hospital.fr:8883`); "
        "unset: the host and port of TELEMON_MQTT_URL",
    ),
    Setting(
        "TELEMON_BROKER_PASSWORD_FILE",
        "",
        "file the MQTT role keeps equal to the active devices' broker logins and its own (Mosquitto "
        "`password_file` format), rewritten on every device change; unset: `telemon broker-passwords` writes it",
    ),
    Setting(
        "TELEMON_BROKER_RELOAD",
        "",
        "command run after each rewrite of TELEMON_BROKER_PASSWORD_FILE so that the broker reads it again "
        "(`pkill -HUP -x mosquitto`); unset: the broker watches the file itself (deploy/)",
    ),
)

_DEFAULTS = {s.name: s.default for s in SETTINGS}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("auto", "text", "json")


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    mqtt_url: str | None
    state_dir: Path
    roles: tuple[str, ...]
    host: str
    port: int
    log_level: str
    log_format: str
    db_pool_size: int
    mqtt_client_id: str
    mqtt_shared_group: str
    max_batch_readings: int
    max_body_bytes: int
    smtp_url: str | None = None
    smtp_from: str = "telemon@localhost"
    public_url: str | None = None
    public_mqtt_url: str | None = None
    broker_password_file: Path | None = None
    broker_reload: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env

        def get(name: str) -> str:
            return source.get(name, _DEFAULTS[name]).strip()

        database_url = get("TELEMON_DATABASE_URL") or None
        if database_url is not None:
            check_database_url(database_url, "TELEMON_DATABASE_URL")
        mqtt_url = get("TELEMON_MQTT_URL") or None
        if mqtt_url is not None:
            parse_mqtt_url(mqtt_url, "TELEMON_MQTT_URL")
        log_level = get("TELEMON_LOG_LEVEL").upper()
        if log_level not in LOG_LEVELS:
            raise SettingsError(f"TELEMON_LOG_LEVEL: {log_level!r} is not one of {', '.join(LOG_LEVELS)}")
        smtp_url = get("TELEMON_SMTP_URL") or None
        if smtp_url is not None:
            parse_smtp_url(smtp_url, "TELEMON_SMTP_URL")
        smtp_from = get("TELEMON_SMTP_FROM")
        if "@" not in smtp_from:
            raise SettingsError(f"TELEMON_SMTP_FROM: {smtp_from!r} is not an email address")
        log_format = get("TELEMON_LOG_FORMAT").lower()
        if log_format not in LOG_FORMATS:
            raise SettingsError(f"TELEMON_LOG_FORMAT: {log_format!r} is not one of {', '.join(LOG_FORMATS)}")
        public_url = get("TELEMON_PUBLIC_URL").rstrip("/") or None
        if public_url is not None and (
            urlsplit(public_url).scheme not in ("http", "https") or not urlsplit(public_url).hostname
        ):
            raise SettingsError(f"TELEMON_PUBLIC_URL: {public_url!r} is not an http(s) URL with a host")
        public_mqtt_url = get("TELEMON_PUBLIC_MQTT_URL") or None
        if public_mqtt_url is not None:
            parse_mqtt_url(public_mqtt_url, "TELEMON_PUBLIC_MQTT_URL")
        password_file = get("TELEMON_BROKER_PASSWORD_FILE")
        try:
            reload = tuple(shlex.split(get("TELEMON_BROKER_RELOAD")))
        except ValueError as exc:
            raise SettingsError(f"TELEMON_BROKER_RELOAD: {exc}") from None
        return cls(
            database_url=database_url,
            mqtt_url=mqtt_url,
            state_dir=Path(get("TELEMON_STATE_DIR")),
            roles=parse_roles(get("TELEMON_ROLES"), "TELEMON_ROLES"),
            host=get("TELEMON_HOST"),
            port=_int(get("TELEMON_PORT"), "TELEMON_PORT", 1, 65535),
            log_level=log_level,
            log_format=log_format,
            db_pool_size=_int(get("TELEMON_DB_POOL_SIZE"), "TELEMON_DB_POOL_SIZE", 2, 1000),
            mqtt_client_id=get("TELEMON_MQTT_CLIENT_ID"),
            mqtt_shared_group=get("TELEMON_MQTT_SHARED_GROUP"),
            max_batch_readings=_int(get("TELEMON_MAX_BATCH_READINGS"), "TELEMON_MAX_BATCH_READINGS", 1, 1_000_000),
            max_body_bytes=_int(get("TELEMON_MAX_BODY_BYTES"), "TELEMON_MAX_BODY_BYTES", 1024, 1 << 30),
            smtp_url=smtp_url,
            smtp_from=smtp_from,
            public_url=public_url,
            public_mqtt_url=public_mqtt_url,
            broker_password_file=Path(password_file) if password_file else None,
            broker_reload=reload,
        )


def parse_roles(text: str, where: str) -> tuple[str, ...]:
    roles = tuple(dict.fromkeys(r.strip().lower() for r in text.split(",") if r.strip()))
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise SettingsError(
            f"{where}: unknown role {', '.join(unknown) or '(none given)'}; choose from {', '.join(ROLES)}"
        )
    return roles


def check_database_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not (parts.hostname or "host=" in parts.query):
        raise SettingsError(f"{where}: {redact(url)!r} is not a PostgreSQL URL (postgresql://user@host:5432/db)")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise SettingsError(f"{where}: {redact(url)!r} has a malformed port") from exc


@dataclass(frozen=True)
class MqttAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def parse_mqtt_url(url: str, where: str = "TELEMON_MQTT_URL") -> MqttAddress:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp") or not parts.hostname:
        raise SettingsError(f"{where}: {redact(url)!r} is not an MQTT URL (mqtt://user:pass@host:1883)")
    try:
        port = parts.port
    except ValueError as exc:
        raise SettingsError(f"{where}: {redact(url)!r} has a malformed port") from exc
    tls = parts.scheme == "mqtts"
    return MqttAddress(parts.hostname, port or (8883 if tls else 1883), parts.username, parts.password, tls)


@dataclass(frozen=True)
class SmtpAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: str | None  # None (clear), "starttls" or "tls"


SMTP_SCHEMES = {"smtp": (25, None), "smtp+starttls": (587, "starttls"), "smtps": (465, "tls")}


def parse_smtp_url(url: str, where: str = "TELEMON_SMTP_URL") -> SmtpAddress:
    parts = urlsplit(url)
    if parts.scheme not in SMTP_SCHEMES or not parts.hostname:
        raise SettingsError(
            f"{where}: {redact(url)!r} is not an SMTP URL (smtp://, smtp+starttls:// or smtps://user:pass@host:port)"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise SettingsError(f"{where}: {redact(url)!r} has a malformed port") from exc
    default_port, tls = SMTP_SCHEMES[parts.scheme]
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return SmtpAddress(parts.hostname, port or default_port, username, password, tls)


def redact(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def _int(text: str, name: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"{name}: {text!r} is not a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}: {value} is outside {low}..{high}")
    return value
