"""Settings from TELEMON_* variables: defaults, and one clear message naming the variable when wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from telemon.settings import SETTINGS, Settings, SettingsError, parse_mqtt_url, redact

README = Path(__file__).parents[1] / "README.md"


def test_defaults_mean_embedded_services() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.mqtt_url is None
    assert settings.roles == ("api", "mqtt", "scheduler")
    assert settings.port == 8000
    assert settings.state_dir == Path(".telemon")
    assert settings.log_format == "auto"


def test_values_are_read() -> None:
    settings = Settings.from_env(
        {
            "TELEMON_DATABASE_URL": "postgresql://u:p@db:5432/t",
            "TELEMON_MQTT_URL": "mqtt://svc:pw@broker:1884",
            "TELEMON_ROLES": "MQTT, api,mqtt",
            "TELEMON_PORT": "9000",
            "TELEMON_LOG_LEVEL": "debug",
            "TELEMON_LOG_FORMAT": "JSON",
        }
    )
    assert settings.database_url == "postgresql://u:p@db:5432/t"
    assert settings.roles == ("mqtt", "api")
    assert settings.log_format == "json"
    assert settings.port == 9000
    assert settings.log_level == "DEBUG"
    address = parse_mqtt_url(settings.mqtt_url or "")
    assert (address.host, address.port, address.username, address.password) == ("broker", 1884, "svc", "pw")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TELEMON_DATABASE_URL", "mysql://x@y/z", "TELEMON_DATABASE_URL: 'mysql://x@y/z' is not a PostgreSQL URL"),
        (
            "TELEMON_DATABASE_URL",
            "postgresql://u@h:99999/d",
            "TELEMON_DATABASE_URL: 'postgresql://u@h:99999/d' has a malformed port",
        ),
        ("TELEMON_MQTT_URL", "http://broker", "TELEMON_MQTT_URL: 'http://broker' is not an MQTT URL"),
        ("TELEMON_ROLES", "api,web", "TELEMON_ROLES: unknown role web"),
        ("TELEMON_PORT", "eighty", "TELEMON_PORT: 'eighty' is not a whole number"),
        ("TELEMON_PORT", "70000", "TELEMON_PORT: 70000 is outside 1..65535"),
        ("TELEMON_LOG_LEVEL", "LOUD", "TELEMON_LOG_LEVEL: 'LOUD' is not one of"),
        ("TELEMON_LOG_FORMAT", "yaml", "TELEMON_LOG_FORMAT: 'yaml' is not one of auto, text, json"),
    ],
)
def test_wrong_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({name: value})
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_passwords_are_redacted_in_messages() -> None:
    assert redact("postgresql://u:secret@h/d") == "postgresql://u:***@h/d"
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"TELEMON_DATABASE_URL": "mysql://u:secret@h/d"})
    assert "secret" not in str(raised.value)


def test_readme_documents_every_setting() -> None:
    table = {m for m in re.findall(r"^\| `(TELEMON_[A-Z_]+)` \|", README.read_text(), re.MULTILINE)}
    assert table == {s.name for s in SETTINGS}
