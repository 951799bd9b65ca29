"""CSV exports and the monthly activity report, read back as a spreadsheet would: a patient's readings with her
doses and blood pressure in time order (sent through the device contract, a re-sent sync included), ISO times,
no cell that runs as a formula, another team's patient a 404, every export audited; and a month's activity with
the figures a quality review asks for, computed from what the month really held."""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from records import activity
from telemon import patients, teams
from telemon.app.services import Services
from tests.support.clinic import auth, clinic_client, enrol
from tests.support.factories import add_device, api_key
from tests.test_ui_toolkit import browser, login, make_clinician, make_team, parse_html


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with clinic_client(services) as http:
        yield http


def _z(at: dt.datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _rows(answer: httpx.Response) -> list[dict[str, str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["cache-control"] == "no-store"
    return list(csv.DictReader(io.StringIO(answer.text)))


async def test_a_patients_readings_doses_and_blood_pressure_come_out_in_time_order(
    api: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    async with db.acquire() as conn:
        team = await teams.create_team(conn, f"t-{uuid.uuid4().hex[:6]}")
    key = await api_key(db, "patients:read", "patients:write", "readings:read", teams=[team])
    patient = await enrol(api, key, external_id=f"=IPP{uuid.uuid4().hex[:6]}", name="=HYPERLINK(1)")
    device = await add_device(db, uuid.UUID(patient["id"]), kind="app")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    sync = {
        "readings": [
            {"measured_at": _z(now - dt.timedelta(hours=3)), "value": 5.4, "unit": "mmol/L"},  # no meal context
            {"kind": "insulin", "measured_at": _z(now - dt.timedelta(hours=2, minutes=5)), "units": 6,
             "insulin": "rapid", "product": "NovoRapid", "slot": "lunch"},
            {"measured_at": _z(now - dt.timedelta(hours=1)), "value": 128, "unit": "mg/dL", "context": "after_meal",
             "meal": "lunch", "minutes_after_meal": 60},
            {"kind": "blood_pressure", "measured_at": _z(now - dt.timedelta(minutes=30)), "systolic": 142,
             "diastolic": 91, "pulse": 80, "unit": "mmHg"},
        ]
    }  # fmt: skip
    for _ in range(2):  # a phone that sends its queue again: duplicates, not doubles
        sent = await api.post("/api/v1/readings", json=sync, headers=auth(device.token))
        assert sent.status_code == 200, sent.text

    path = f"/api/v1/patients/{patient['id']}/readings.csv"
    rows = _rows(await api.get(path, headers=auth(key)))
    assert [r["record"] for r in rows] == ["smbg", "insulin", "smbg", "blood_pressure"]
    first, dose, second, pressure = rows
    assert first["measured_at"] == (now - dt.timedelta(hours=3)).isoformat()
    assert first["local_time"].endswith(("+01:00", "+02:00"))  # Europe/Paris, her zone
    assert (first["value_as_sent"], first["unit_as_sent"], first["context_inferred"]) == ("5.4", "mmol/L", "True")
    assert (dose["value"], dose["unit"], dose["product"], dose["slot"]) == ("6", "U", "NovoRapid", "lunch")
    assert (second["value"], second["unit"], second["meal"]) == ("128", "mg/dL", "lunch")
    assert (pressure["systolic"], pressure["diastolic"], pressure["pulse"]) == ("142", "91", "80")

    since = (now - dt.timedelta(hours=1, minutes=30)).isoformat()
    later = _rows(await api.get(path, params={"from": since}, headers=auth(key)))
    assert [r["record"] for r in later] == ["smbg", "blood_pressure"]
    assert (await api.get(path, params={"from": "yesterday"}, headers=auth(key))).status_code == 422
    assert (await api.get(path, params={"from": "2026-12-04T10:00"}, headers=auth(key))).status_code == 422

    stranger = await api_key(db, "readings:read", teams=[await teams.create_team(db, f"o-{uuid.uuid4().hex[:6]}")])
    assert (await api.get(path, headers=auth(stranger))).status_code == 404
    no_scope = await api_key(db, "patients:read", teams=[team])
    assert (await api.get(path, headers=auth(no_scope))).status_code == 403

    listing = _rows(await api.get("/api/v1/patients.csv", headers=auth(key)))
    assert [(r["id"], r["external_id"], r["name"]) for r in listing] == [
        (patient["id"], "'" + patient["external_id"], "'=HYPERLINK(1)")  # never run as a formula
    ]
    exported = await db.fetch(
        "SELECT action, detail FROM audit_log WHERE action IN ('patient.export', 'patients.export')"
        " AND (patient_id = $1 OR $1 = ANY(patient_ids)) ORDER BY id",
        uuid.UUID(patient["id"]),
    )
    actions = [(r["action"], r["detail"].get("rows")) for r in exported]
    assert actions == [("patient.export", 4), ("patient.export", 2), ("patients.export", None)]


async def _alert(conn: asyncpg.Connection, patient_id: uuid.UUID, opened: dt.datetime, **fields: Any) -> None:
    await conn.execute(
        "INSERT INTO alerts (patient_id, rule, episode_key, severity, status, message, opened_at, acknowledged_at,"
        " resolved_at, resolved_by) VALUES ($1, $2, $3, $4, $5, '{}'::jsonb, $6, $7, $8, $9)",
        patient_id,
        fields.get("rule", "hypo_l2"),
        uuid.uuid4().hex,
        fields.get("severity", "urgent"),
        fields.get("status", "acknowledged"),
        opened,
        fields.get("acknowledged_at"),
        fields.get("resolved_at"),
        fields.get("resolved_by"),
    )


async def test_a_months_activity_counts_what_the_month_held(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    november = dt.datetime(2026, 11, 1, tzinfo=dt.UTC) - dt.timedelta(hours=1)  # midnight in Paris
    async with db.acquire() as conn:

        async def patient(name: str, **changes: Any) -> uuid.UUID:
            made = await patients.create_patient(
                conn,
                team_id=team.id,
                external_id=f"{name}-{uuid.uuid4().hex[:4]}",
                display_name=name,
                time_zone="Europe/Paris",
                due_date=dt.date(2027, 2, 1),
                profile="FR",
                treatment="diet",
            )
            await conn.execute("UPDATE patients SET created_at = $2 WHERE id = $1", made, changes["enrolled"])
            if "delivered" in changes:
                await conn.execute("UPDATE patients SET delivery_date = $2 WHERE id = $1", made, changes["delivered"])
            return made

        # enrolled in October, monitored all of November (30 days); enrolled on 21 November (10 days); delivered
        # on 5 November (5 days); enrolled in December (not counted)
        whole = await patient("Whole", enrolled=november - dt.timedelta(days=10))
        late = await patient("Late", enrolled=november + dt.timedelta(days=20, hours=9))
        delivered = await patient(
            "Delivered", enrolled=november - dt.timedelta(days=40), delivered=dt.date(2026, 11, 5)
        )
        await patient("December", enrolled=november + dt.timedelta(days=31))
        device = await add_device(db, whole, kind="meter")
        for day in (2, 3, 4):  # Whole sends on 2–4 November, then falls silent for the rest of the month
            at = november + dt.timedelta(days=day, hours=8)
            await conn.execute(
                "INSERT INTO readings (patient_id, device_id, kind, device_time, value_raw, unit_raw, measured_at,"
                " value_mgdl, context, source, received_at) VALUES ($1, $2, 'smbg', $3, 92, 'mg/dL', $3, 92,"
                " 'fasting', 'mqtt', $3)",
                whole,
                device.device_id,
                at,
            )
        # urgent alerts acknowledged after 5, 10, 20 and 60 minutes; one never acknowledged; a warning cleared
        for minutes in (5, 10, 20, 60):
            opened = november + dt.timedelta(days=3, hours=minutes)
            await _alert(conn, late, opened, acknowledged_at=opened + dt.timedelta(minutes=minutes))
        await _alert(conn, late, november + dt.timedelta(days=25), status="open")
        await _alert(
            conn,
            delivered,
            november + dt.timedelta(days=2),
            rule="fasting_pattern",
            severity="warning",
            status="resolved",
            resolved_at=november + dt.timedelta(days=3),
            resolved_by="system",
        )
        await _alert(conn, late, november - dt.timedelta(days=2), status="open")  # October: not counted
        found = await activity.activity(conn, team.id, "2026-11", now=dt.datetime(2026, 12, 4, tzinfo=dt.UTC))

    assert (found.month, found.zone, found.start, found.until) == ("2026-11", "Europe/Paris", november, found.end)
    assert found.patients == 3 and found.monitored_days == 30 + 10 + 5
    assert [(r["source"], r["kind"], r["readings"]) for r in found.readings] == [("mqtt", "smbg", 3)]
    assert (found.urgent, found.urgent_acknowledged) == (5, 4)
    assert found.acknowledge_median_s == 15 * 60  # of 5, 10, 20 and 60 minutes
    assert found.acknowledge_p90_s == pytest.approx(48.0 * 60)  # percentile_cont: 20 + 0.7 × (60 - 20) minutes
    by_rule = {(a["rule"], a["severity"]): a for a in found.alerts}
    assert by_rule[("hypo_l2", "urgent")]["raised"] == 5 and by_rule[("fasting_pattern", "warning")]["cleared"] == 1
    assert [s["display_name"] for s in found.silent] == ["Late", "Whole"]  # Late never sent a reading
    table = list(csv.reader(io.StringIO(activity.activity_csv(found))))
    assert table[0] == ["section", "item", "detail", "value"]
    assert ["urgent_alerts", "median_seconds_to_acknowledge", "", "900"] in table

    async with browser(services) as http:
        email = await make_clinician(db, team, role="midwife")
        assert (await login(http, email)).status_code == 303
        page = await http.get("/activity", params={"month": "2026-11"})
        assert page.status_code == 200
        html = parse_html(page.text)
        assert html.one("#patients").text() == "3" and html.one("#monitored-days").text() == "45"
        assert [r.get("data-rule") for r in html.select("tr.alert-rule")] == ["hypo_l2", "fasting_pattern"]
        assert (await http.get("/activity", params={"month": "novembre"})).status_code == 422
        download = await http.get("/activity.csv", params={"month": "2026-11"})
        assert download.status_code == 200 and download.text == activity.activity_csv(found)
        printed = await http.get("/activity.pdf", params={"month": "2026-11"})
        assert printed.status_code == 200 and printed.headers["content-type"] == "application/pdf"
        text = subprocess.run(
            ["pdftotext", "-layout", "-", "-"], input=printed.content, capture_output=True, check=True
        ).stdout.decode()
        assert f"Activity of {team.name}: 2026-11" in text and "Monitored days" in text and "45" in text
        assert "4 of 5 acknowledged; median 0:15:00" in text
        readings = await http.get(f"/patients/{whole}/readings.csv")
        assert [r["value"] for r in _rows(readings)] == ["92", "92", "92"]
        other_team = await make_team(db)
        async with db.acquire() as conn:
            elsewhere = await patients.create_patient(
                conn,
                team_id=other_team.id,
                external_id="x",
                display_name="Elsewhere",
                time_zone="UTC",
                due_date=dt.date(2027, 2, 1),
                profile="FR",
                treatment="diet",
            )
        assert (await http.get(f"/patients/{elsewhere}/readings.csv")).status_code == 404
