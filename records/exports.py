"""CSV exports for a unit's spreadsheets and a hospital's integration: a patient's readings with her doses and
other measurements over a period, and a team's patient list. Written by :mod:`telemon.csv_export` (a header row,
ISO 8601 times, no cell a spreadsheet would run), served by the hospital API (:mod:`records.export_api`) and by
the dashboard, and audited by the caller like every read of patient data."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import HTTPException

from records import export_queries as queries
from telemon import audit, patients
from telemon.csv_export import csv_text
from telemon.db import Conn
from telemon.patients import PatientRecord
from telemon.periods import END, EPOCH, bound_instant, parse_bound

READINGS_HEADER = (
    "record",  # smbg, cgm, insulin, ketone, weight, blood_pressure
    "measured_at",  # UTC
    "local_time",  # the same instant in the patient's time zone, with its offset
    "value",  # glucose in mg/dL, insulin units, blood ketones mmol/L, weight kg
    "unit",
    "value_as_sent",
    "unit_as_sent",
    "context",
    "context_inferred",
    "meal",
    "minutes_after_meal",
    "flags",
    "insulin",
    "product",
    "slot",
    "urine_ketones",
    "systolic",
    "diastolic",
    "pulse",
    "device_id",
    "source",
    "external_id",
    "note",
)
MEASUREMENT_UNITS = {"insulin": "U", "ketone": "mmol/L", "weight": "kg", "blood_pressure": "mmHg"}

PATIENTS_HEADER = (
    "id",
    "external_id",
    "name",
    "team",
    "due_date",
    "delivery_date",
    "diagnosis_date",
    "profile",
    "treatment",
    "readings_per_day",
    "time_zone",
    "enrolled_at",
    "archived_at",
    "last_reading_at",
    "open_alerts",
)


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


async def patient_readings(conn: Conn, patient: PatientRecord, start: dt.datetime, end: dt.datetime) -> tuple[str, int]:
    """The CSV of ``patient``'s readings and measurements measured in [start, end), in time order, and its number
    of rows."""
    zone = ZoneInfo(patient.time_zone)
    rows: list[tuple[dt.datetime, int, tuple[Any, ...]]] = []
    for r in await conn.fetch(queries.PATIENT_READINGS, patient.id, start, end):
        at = r["measured_at"]
        rows.append(
            (
                at,
                0,
                (
                    r["kind"], _iso(at), _iso(at.astimezone(zone)), _exact(r["value_mgdl"]), "mg/dL",
                    _exact(r["value_raw"]), r["unit_raw"], r["context"], r["context_inferred"], r["meal"],
                    r["minutes_after_meal"], " ".join(r["flags"]), None, None, None, None, None, None, None,
                    r["device_id"], r["source"], r["external_id"], r["note"],
                ),
            )
        )  # fmt: skip
    for r in await conn.fetch(queries.PATIENT_MEASUREMENTS, patient.id, start, end):
        at = r["measured_at"]
        rows.append(
            (
                at,
                1,
                (
                    r["kind"], _iso(at), _iso(at.astimezone(zone)), _exact(r["value"]), MEASUREMENT_UNITS[r["kind"]],
                    _exact(r["value_raw"]), r["unit_raw"], None, None, None, None, None, r["insulin"], r["product"],
                    r["slot"], r["urine"], _exact(r["systolic"]), _exact(r["diastolic"]), _exact(r["pulse"]),
                    r["device_id"], r["source"], r["external_id"], r["note"],
                ),
            )
        )  # fmt: skip
    rows.sort(key=lambda row: (row[0], row[1]))
    return csv_text(READINGS_HEADER, [row[2] for row in rows]), len(rows)


async def team_patients(conn: Conn, team_ids: Sequence[uuid.UUID], *, archived: bool) -> tuple[str, list[uuid.UUID]]:
    """The CSV of the patients of ``team_ids`` (the archived ones too when ``archived``), and their ids."""
    found = await conn.fetch(queries.TEAM_PATIENTS, list(team_ids), archived)
    lines = [
        (
            r["id"], r["external_id"], r["display_name"], r["team"], _iso(r["due_date"]), _iso(r["delivery_date"]),
            _iso(r["diagnosis_date"]), r["profile"], r["treatment"], r["readings_per_day"], r["time_zone"],
            _iso(r["created_at"]), _iso(r["archived_at"]), _iso(r["last_reading_at"]), r["open_alerts"],
        )
        for r in found
    ]  # fmt: skip
    return csv_text(PATIENTS_HEADER, lines), [r["id"] for r in found]


class ExportRefused(Exception):
    """The export cannot be given: ``status`` 404 (no such patient in the reader's teams) or 422 (a bound)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


async def export_patient_readings(
    conn: Conn,
    patient_id: uuid.UUID,
    team_ids: Sequence[uuid.UUID],
    *,
    actor: str,
    from_text: str | None,
    to_text: str | None,
) -> tuple[str, str]:
    """The readings CSV of a patient of ``team_ids`` for [from, to) (a date is her local midnight; default: all
    she sent until now) and its file name; audited as ``patient.export``. The hospital API and the dashboard both
    export through here."""
    patient = await patients.patient_of_teams(conn, patient_id, list(team_ids))
    if patient is None:
        raise ExportRefused(404, "no such patient")
    try:
        start = bound_instant(parse_bound(from_text, "from"), "from", patient.time_zone) or EPOCH
        end = bound_instant(parse_bound(to_text, "to"), "to", patient.time_zone) or END
    except HTTPException as refused:
        raise ExportRefused(422, str(refused.detail)) from None
    if start >= end:
        raise ExportRefused(422, "from: the period's start must come before its end (to)")
    text, rows = await patient_readings(conn, patient, start, end)
    await audit.record(
        conn,
        actor=actor,
        action="patient.export",
        patient_id=patient.id,
        detail={"format": "csv", "from": start.isoformat(), "to": end.isoformat(), "rows": rows},
    )
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in patient.external_id)[:40]
    return text, f"telemon-{name}-readings.csv"


async def export_team_patients(conn: Conn, team_ids: Sequence[uuid.UUID], *, actor: str, archived: bool) -> str:
    """The patient list CSV of ``team_ids``; audited as ``patients.export`` naming every patient listed."""
    text, ids = await team_patients(conn, team_ids, archived=archived)
    await audit.record(conn, actor=actor, action="patients.export", detail={"format": "csv"}, patient_ids=ids)
    return text


def _exact(value: float | None) -> str | None:
    """A number as stored, without a float's noise: 101.0 is written 101, 5.55 stays 5.55."""
    if value is None:
        return None
    return str(int(value)) if float(value).is_integer() else repr(float(value))
