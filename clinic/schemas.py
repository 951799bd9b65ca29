"""What the clinic's API reads and answers, as pydantic models: ``/openapi.json`` documents them, and a body that
does not fit is a 422 whose ``detail`` names the field (``loc``) and says why, never a 500.

Text that reaches the database is refused when PostgreSQL could not store it or a page could misshow it: a NUL
character, a lone surrogate (JSON's ``"\\ud800"``), a control character; and each text has a length bound, so a
huge string is a 422 rather than a row nobody can read."""

from __future__ import annotations

import datetime as dt
import functools
import unicodedata
import uuid
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from telemon import weight_gain
from telemon.devices import KINDS
from telemon.patients import PROFILES, TREATMENTS


def plain_text(text: str) -> str:
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains a lone surrogate: not UTF-8 text") from None
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise ValueError("contains a control character")
    return text


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def time_zone(name: str) -> str:
    if name not in _zones():
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, such as 'Europe'
            raise ValueError(f"{name!r} is not an IANA time zone (for example Europe/Paris)") from None
    return name


ExternalId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(plain_text),
    Field(description="The hospital number: unique within the care team.", examples=["H-2026-0042"]),
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(plain_text),
    Field(description="The name the care team sees.", examples=["Camille Martin"]),
]
TimeZone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(plain_text),
    AfterValidator(time_zone),
    Field(description="IANA time zone where she lives: her days, fasting and nights are judged in it.",
          examples=["Europe/Paris"]),
]  # fmt: skip
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=100),
    AfterValidator(plain_text),
    Field(description="Free text, such as the meter's model.", examples=["Accu-Chek Guide"]),
]
Profile = Literal["FR", "NICE", "ADA"]
Treatment = Literal["diet", "metformin", "insulin"]
Kind = Literal["meter", "app", "cgm"]
ReadingsPerDay = Annotated[int, Field(strict=True, ge=1, le=12, description="Prescribed readings per day.")]
HeightCm = Annotated[
    float,
    Field(
        ge=weight_gain.HEIGHT_CM[0],
        le=weight_gain.HEIGHT_CM[1],
        allow_inf_nan=False,
        description="Her height in cm: with the pre-pregnancy weight, her BMI and the weight gain recommended for it.",
        examples=[165],
    ),
]
PrePregnancyWeightKg = Annotated[
    float,
    Field(
        ge=weight_gain.PRE_PREGNANCY_WEIGHT_KG[0],
        le=weight_gain.PRE_PREGNANCY_WEIGHT_KG[1],
        allow_inf_nan=False,
        description="Her weight before the pregnancy, in kg.",
        examples=[62.5],
    ),
]
DUE_DATE = "Expected date of delivery: at most 10 months ahead, at most 13 weeks past."

assert set(PROFILES) == set(Profile.__args__)  # type: ignore[attr-defined]
assert set(TREATMENTS) == set(Treatment.__args__)  # type: ignore[attr-defined]
assert set(KINDS) == set(Kind.__args__)  # type: ignore[attr-defined]


class Strict(BaseModel):
    """A body whose unknown fields are refused: a misspelt field is named, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class PatientIn(Strict):
    """An enrolment: the command line's ``create-patient`` through the API."""

    external_id: ExternalId
    name: Name
    timezone: TimeZone
    due_date: dt.date = Field(description=DUE_DATE)
    diagnosis_date: dt.date | None = Field(None, description="Date of the GDM diagnosis; not in the future.")
    profile: Profile = Field("FR", description="Guideline profile of her targets.")
    treatment: Treatment = Field("diet")
    readings_per_day: ReadingsPerDay = 4
    height_cm: HeightCm | None = None
    pre_pregnancy_weight_kg: PrePregnancyWeightKg | None = None
    team_id: uuid.UUID | None = Field(
        None, description="The care team to enrol her in; needed only when the key acts for several teams."
    )


class PatientPatch(Strict):
    """The fields to change; a field left out keeps its value. Only ``diagnosis_date``, ``height_cm`` and
    ``pre_pregnancy_weight_kg`` may be null (cleared)."""

    external_id: ExternalId | None = None
    name: Name | None = None
    timezone: TimeZone | None = None
    due_date: dt.date | None = Field(None, description=DUE_DATE)
    diagnosis_date: dt.date | None = None
    profile: Profile | None = None
    treatment: Treatment | None = None
    readings_per_day: ReadingsPerDay | None = None
    height_cm: HeightCm | None = None
    pre_pregnancy_weight_kg: PrePregnancyWeightKg | None = None

    @field_validator(
        "external_id", "name", "timezone", "due_date", "profile", "treatment", "readings_per_day", mode="before"
    )
    @classmethod
    def not_null(cls, value: Any) -> Any:
        """A field left out keeps its value; null would erase what the record needs."""
        if value is None:
            raise ValueError("may not be null; leave the field out to keep its value")
        return value


class PatientOut(BaseModel):
    id: uuid.UUID
    team_id: uuid.UUID
    external_id: str
    name: str
    timezone: str
    due_date: dt.date
    diagnosis_date: dt.date | None
    delivery_date: dt.date | None
    profile: Profile
    treatment: Treatment
    readings_per_day: int
    height_cm: float | None
    pre_pregnancy_weight_kg: float | None
    archived: bool = Field(description="Monitoring ended: read-only, out of the triage and of the scheduled passes.")
    archived_at: dt.datetime | None
    archived_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime = Field(description="Last change of the record, whoever made it.")


class PatientPage(BaseModel):
    items: list[PatientOut]
    next: str | None = Field(description="The cursor of the next page, or null on the last one.")


class DeviceIn(Strict):
    kind: Kind = Field(description="meter (a meter or its gateway), app (the phone app), cgm (a CGM uploader).")
    label: Label = ""


class DeviceOut(BaseModel):
    device_id: str
    kind: Kind
    label: str
    active: bool = Field(description="False once revoked: its token is refused.")
    created_at: dt.datetime
    last_seen_at: dt.datetime | None
    revoked_at: dt.datetime | None
    readings_7d: int = Field(description="Readings it sent measured in the last 7 days.")


class DevicePage(BaseModel):
    items: list[DeviceOut]
    next: str | None = Field(description="Always null: a patient's devices fit in one page.")


class HttpEndpoint(BaseModel):
    readings_url: str = Field(description="POST the device wire format here.")
    authorization: str = Field(description="The Authorization header to send.")


class MqttEndpoint(BaseModel):
    host: str
    port: int
    tls: bool
    username: str = Field(description="The device id.")
    password: str = Field(description="The device token.")
    readings_topic: str = Field(description="Publish readings here, QoS 1.")
    receipts_topic: str = Field(description="Subscribe here for each sync's receipt.")


class NightscoutEndpoint(BaseModel):
    url: str = Field(description="The Nightscout base URL the uploader asks for (xDrip+, Juggluco, AndroidAPS).")
    api_secret: str = Field(description="The uploader's API secret: the device token.")
    xdrip_url: str = Field(description="xDrip+'s single 'Base URL' field, with the secret in it.")


class Credentials(BaseModel):
    """A device's credentials and where to send with them. The token is shown here once: telemon keeps only its
    hashes."""

    device_id: str
    kind: Kind
    token: str
    http: HttpEndpoint | None = Field(description="For a meter (gateway) or the phone app.")
    mqtt: MqttEndpoint | None = Field(description="For a meter (gateway) or the phone app; null with no broker.")
    nightscout: NightscoutEndpoint | None = Field(description="For a CGM uploader.")


class NewDeviceOut(Credentials):
    label: str
    pairing_code: str = Field(description="One-time code the phone app exchanges for its own token (POST /pairing).")
    pairing_code_expires_at: dt.datetime


class PairingCodeOut(BaseModel):
    device_id: str
    pairing_code: str
    pairing_code_expires_at: dt.datetime


class PairingIn(Strict):
    code: str = Field(
        max_length=64,
        description="The code as printed (ABCD-EFGH-JKMN); case, spaces and dashes do not matter.",
        examples=["7KQ2-M4XH-9RTA"],
    )
