"""Settings from TELEMON_* variables: defaults, and one clear message naming the variable when wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from telemon import device_sheet
from telemon.device_sheet import reached_at
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


def test_the_addresses_on_pairing_sheets_are_the_public_ones_when_set() -> None:
    inside = Settings.from_env({})
    assert reached_at(inside, "http://10.0.0.5:8000/", "mqtt://svc:pw@mosquitto:1883") == (
        "http://10.0.0.5:8000/",
        "mqtt://svc:pw@mosquitto:1883",
    )
    public = Settings.from_env(
        {"TELEMON_PUBLIC_URL": "https://telemon.example.fr/", "TELEMON_PUBLIC_MQTT_URL": "mqtts://mqtt.example.fr"}
    )
    base, mqtt = reached_at(public, "http://10.0.0.5:8000/", "mqtt://svc:pw@mosquitto:1883")
    assert base == "https://telemon.example.fr"
    sheet = device_sheet.sheet("meter", "m1", "tok", base_url=base, mqtt_url=mqtt)
    assert sheet.http is not None and sheet.http.readings_url == "https://telemon.example.fr/api/v1/readings"
    assert sheet.mqtt is not None and (sheet.mqtt.host, sheet.mqtt.port, sheet.mqtt.tls) == (
        "mqtt.example.fr",
        8883,
        True,
    )
    assert sheet.mqtt.username == "m1"  # the device's own login, never the service's


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TELEMON_PUBLIC_URL", "telemon.example.fr", "is not an http(s) URL with a host"),
        ("TELEMON_PUBLIC_URL", "ftp://telemon.example.fr", "is not an http(s) URL with a host"),
        ("TELEMON_PUBLIC_MQTT_URL", "http://mqtt.example.fr", "is not an MQTT URL"),
        ("TELEMON_BROKER_RELOAD", "pkill -HUP 'mosquitto", "No closing quotation"),
    ],
)
def test_public_addresses_and_the_reload_command_are_checked(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(name)) as raised:
        Settings.from_env({name: value})
    assert message in str(raised.value)


def test_the_broker_logins_file_and_reload_command_are_read() -> None:
    settings = Settings.from_env(
        {"TELEMON_BROKER_PASSWORD_FILE": "/run/logins", "TELEMON_BROKER_RELOAD": "pkill -HUP -x mosquitto"}
    )
    assert settings.broker_password_file == Path("/run/logins")
    assert settings.broker_reload == ("pkill", "-HUP", "-x", "mosquitto")
