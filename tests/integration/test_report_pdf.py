"""The PDF patient report and end-of-monitoring letter: rendered by WeasyPrint on the real app, read back with
poppler (pdfinfo, pdftotext, pdftoppm) as a person or a hospital record would read them."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import numpy as np

from clinician_ui import glycaemia as G
from clinician_ui.i18n import Formatter
from telemon import patients, postpartum
from telemon import treatment as plans
from telemon.app.services import Services
from tests.support.clinic import auth, last_audit
from tests.support.factories import api_key
from tests.test_ui_toolkit import (
    Team,
    add_readings,
    browser,
    login,
    make_clinician,
    make_patient,
    make_team,
    parse_html,
)

PARIS = ZoneInfo("Europe/Paris")
HYPO_PARAMS = {
    "threshold_mgdl": 54.0,
    "count": 1,
    "first_at": "2026-01-01T10:00:00Z",
    "first_local": "2026-01-01 11:00",
    "last_at": "2026-01-01T10:00:00Z",
    "last_local": "2026-01-01 11:00",
    "nadir_mgdl": 50.0,
    "nadir_at": "2026-01-01T10:00:00Z",
    "nadir_local": "2026-01-01 11:00",
    "source": "ADA Standards of Care, section 6",
}


def _local(days_ago: int, hour: int, minute: int = 0) -> dt.datetime:
    day = dt.datetime.now(PARIS).date() - dt.timedelta(days=days_ago)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=PARIS)


def pdf_pages(pdf: bytes, tmp_path: Path) -> int:
    """The page count poppler reads (it fails on anything that is not a well-formed PDF)."""
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def flat(text: str) -> str:
    """Text with every run of spaces (no-break ones included, as pdftotext writes them) as one space."""
    return " ".join(text.split())


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "text.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout
    return flat(out)


def pdf_png(pdf: bytes, tmp_path: Path) -> list[Path]:
    """Each page as a PNG (what docs/images/report.png is made from)."""
    path = tmp_path / "image.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(path), str(tmp_path / "page")], check=True)
    return sorted(tmp_path.glob("page-*.png"))


async def _patient_with_a_fortnight(
    db: asyncpg.Pool, team: Team, email: str, name: str
) -> tuple[uuid.UUID, list[float]]:
    """A meter patient with 14 days of readings (some above target, a hypo, one without a context, one of a control
    solution), a coded alert that a clinician acknowledged, a plan changed in the period, and a note."""
    patient, device = await make_patient(db, team, name, profile="FR", treatment="diet")
    readings = []
    for days_ago in range(14):
        readings += [
            (_local(days_ago, 7, 30), 88.0 + days_ago % 3, "fasting", None),
            (_local(days_ago, 10, 0), 112.0 + 3 * (days_ago % 5), "after_meal", "breakfast"),
            (_local(days_ago, 14, 0), 125.0 if days_ago % 4 == 0 else 104.0, "after_meal", "lunch"),
        ]
    readings += [(_local(3, 16, 0), 52.0, "unspecified", None), (_local(2, 21, 0), 131.0, "after_meal", "dinner")]
    readings = [r for r in readings if r[0] < dt.datetime.now(PARIS)]  # today's later readings are not sent yet
    await add_readings(db, patient, device, readings)
    await add_readings(db, patient, device, [(_local(5, 9, 0), 300.0, "unspecified", None)])
    await db.execute(
        "UPDATE readings SET flags = ARRAY['control_solution'] WHERE patient_id = $1 AND value_mgdl = 300", patient
    )
    clinician = await db.fetchval("SELECT id FROM clinicians WHERE email = $1", email)
    await db.execute(
        "INSERT INTO alerts (patient_id, rule, episode_key, severity, status, code, params, message, evidence,"
        " opened_at, acknowledged_at, acknowledged_by)"
        " VALUES ($1, 'hypo_l2', 'e1', 'urgent', 'acknowledged', 'hypo_l2', $2, NULL, $3, now() - interval '3 days',"
        " now() - interval '3 days' + interval '20 minutes', $4)",
        patient,
        json.loads(json.dumps(HYPO_PARAMS)),
        {"reading_ids": [], "values_mgdl": [], "measured_at": []},
        f"clinician:{clinician}",
    )
    async with db.acquire() as conn:
        await plans.new_version(
            conn,
            patient,
            plans.Plan(
                treatment="insulin",
                basal=plans.Basal("NPH", 6.0, "22:00"),
                note="Fasting above target for a week",
            ),
            actor="system",
        )
    await db.execute(
        "INSERT INTO patient_notes (patient_id, author_id, body) VALUES ($1, $2, $3)",
        patient,
        clinician,
        'Appel : régime revu, mesures à jeun à poursuivre. <img src="file:///etc/hostname">',
    )
    measure = (
        "INSERT INTO measurements (patient_id, device_id, kind, device_time, values_key, measured_at, value, insulin,"
        " product, slot, systolic, diastolic, pulse, source) VALUES ($1, $2, $3, $4, $5, $4, $6, $7, $8, $9, $10,"
        " $11, $12, 'http')"
    )
    for days_ago in (1, 2):  # the evening's basal, logged, and a blood pressure
        await db.execute(measure, patient, device, "insulin", _local(days_ago, 22, 0), "6", 6.0, "basal", "NPH",
                         "bedtime", None, None, None)  # fmt: skip
    await db.execute(measure, patient, device, "blood_pressure", _local(1, 8, 0), "146/94", None, None, None, None,
                     146.0, 94.0, 80.0)  # fmt: skip
    values = [r[1] for r in readings]
    return patient, values


async def test_the_report_shows_what_the_dashboard_shows_in_english_and_french(
    services: Services, db: asyncpg.Pool, tmp_path: Path
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, values = await _patient_with_a_fortnight(db, team, email, "Élodie Lefèvre")
    key = await api_key(db, "patients:read", teams=[team.id])
    async with browser(services) as http:
        english = await http.get(f"/api/v1/patients/{patient}/report.pdf", params={"unit": "mmol/L"}, headers=auth(key))
        french = await http.get(
            f"/api/v1/patients/{patient}/report.pdf", params={"lang": "fr", "unit": "g/L"}, headers=auth(key)
        )
    assert english.status_code == 200, english.text
    assert english.headers["content-type"] == "application/pdf"
    assert english.headers["cache-control"] == "no-store"
    assert english.content.startswith(b"%PDF-")
    assert 2 <= pdf_pages(english.content, tmp_path) <= 4
    pages = pdf_png(english.content, tmp_path)
    assert len(pages) == pdf_pages(english.content, tmp_path) and all(p.stat().st_size > 1000 for p in pages)

    today = dt.datetime.now(PARIS).date()
    first = today - dt.timedelta(days=13)
    fmt_en = Formatter(lang="en", unit="mmol/L", now=dt.datetime.now(dt.UTC))
    text = pdf_text(english.content, tmp_path)
    assert "Glucose monitoring report" in text and "Élodie Lefèvre" in text
    assert flat(f"Period: {fmt_en.date(first)} – {fmt_en.date(today)}") in text
    # the figures, as the dashboard's own functions compute them over the logbook's readings
    targets = G.targets_for("FR", "insulin", None)
    rows = await db.fetch(
        "SELECT id, kind, measured_at, value_mgdl, context, context_inferred, meal, minutes_after_meal, flags"
        " FROM readings WHERE patient_id = $1 AND NOT ('control_solution' = ANY(flags)) ORDER BY measured_at, id",
        patient,
    )
    share = G.share_in_target(G.placed_rows(rows, PARIS), targets)
    assert len(rows) == len(values)
    assert flat(f"Meter readings {len(values)}") in text
    assert flat(f"Mean of meter readings {fmt_en.g(sum(values) / len(values))}") in text
    assert flat(f"Readings in target {fmt_en.pct(share.percent)} ({share.in_target} of {share.judged})") in text
    # the plan in force and its change, the coded alert in the reader's language and unit, what was done, the note
    assert "Basal" in text and "NPH" in text and "Fasting above target for a week" in text
    assert "Level 2 hypoglycaemia" in text and "2.8 mmol/L" in text  # the nadir, 50 mg/dL, in mmol/L
    assert "acknowledged by" in text and f"Dr {email[3:9]}" in text
    assert flat('Appel : régime revu, mesures à jeun à poursuivre. <img src="file:///etc/hostname">') in text  # text
    assert "Logbook" in text and "After breakfast" in text
    # the treatment record beside the glucose: the logged basal doses in the logbook, the blood pressure
    assert text.count("6 U NPH") == 2 and "146/94 mmHg" in text

    assert french.status_code == 200, french.text
    fmt_fr = Formatter(lang="fr", unit="g/L", now=dt.datetime.now(dt.UTC))
    texte = pdf_text(french.content, tmp_path)
    assert "Compte rendu de surveillance glycémique" in texte and "Élodie Lefèvre" in texte
    assert flat(f"Période : du {fmt_fr.date(first)} au {fmt_fr.date(today)}") in texte
    assert flat(f"Glycémies capillaires {len(values)}") in texte
    assert flat(f"Moyenne des glycémies capillaires {fmt_fr.g(sum(values) / len(values))}") in texte
    assert "Hypoglycémie de niveau 2" in texte and "0,50" in texte  # the nadir in g/L, with a decimal comma
    assert "Carnet glycémique" in texte and "Après petit-déjeuner" in texte

    audited = await last_audit(db, "patient.report", str(patient))
    assert audited["actor"].startswith("api_key:") and audited["detail"]["kind"] == "report"


async def test_another_teams_patient_is_not_found_and_bad_input_is_a_clear_422(
    services: Services, db: asyncpg.Pool
) -> None:
    team, other = await make_team(db), await make_team(db)
    patient, _ = await make_patient(db, team, "Nadia B.")
    theirs = await api_key(db, "patients:read", teams=[other.id])
    ours = await api_key(db, "patients:read", teams=[team.id])
    writer_only = await api_key(db, "patients:write", teams=[team.id])
    url = f"/api/v1/patients/{patient}/report.pdf"
    async with browser(services) as http:
        assert (await http.get(url, headers=auth(theirs))).status_code == 404
        assert (await http.get(f"/api/v1/patients/{uuid.uuid4()}/report.pdf", headers=auth(ours))).status_code == 404
        assert (await http.get(url, headers=auth(writer_only))).status_code == 403
        assert (await http.get(url)).status_code == 401
        naive = await http.get(url, params={"from": "2026-01-01T10:00"}, headers=auth(ours))
        backwards = await http.get(url, params={"from": "2026-02-01", "to": "2026-01-01"}, headers=auth(ours))
        too_long = await http.get(url, params={"from": "2025-01-01", "to": "2026-06-01"}, headers=auth(ours))
        bad_kind = await http.get(url, params={"kind": "invoice"}, headers=auth(ours))
        bad_unit = await http.get(url, params={"unit": "mg"}, headers=auth(ours))
    assert naive.status_code == 422 and "time zone offset" in naive.text
    assert backwards.status_code == 422 and "before its end" in backwards.text
    assert too_long.status_code == 422 and "at most" in too_long.text
    assert bad_kind.status_code == 422 and bad_unit.status_code == 422
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE patient_id = $1", patient) == 0


async def test_a_period_given_as_dates_or_timestamps_is_the_patients_local_days(
    services: Services, db: asyncpg.Pool, tmp_path: Path
) -> None:
    team = await make_team(db)
    patient, device = await make_patient(db, team, "Inès R.")
    await add_readings(
        db,
        patient,
        device,
        [(_local(20, 7, 0), 90.0, "fasting", None), (_local(10, 7, 0), 91.0, "fasting", None)],
    )
    key = await api_key(db, "patients:read", teams=[team.id])
    first, last = _local(21, 0).date(), _local(15, 0).date()
    async with browser(services) as http:
        by_date = await http.get(
            f"/api/v1/patients/{patient}/report.pdf",
            params={"from": first.isoformat(), "to": last.isoformat()},
            headers=auth(key),
        )
        by_instant = await http.get(
            f"/api/v1/patients/{patient}/report.pdf",
            params={"from": _local(21, 0).isoformat(), "to": _local(15, 0).isoformat()},
            headers=auth(key),
        )
    fmt = Formatter(lang="en", unit="mg/dL", now=dt.datetime.now(dt.UTC))
    for answer in (by_date, by_instant):
        assert answer.status_code == 200, answer.text
        text = pdf_text(answer.content, tmp_path)
        # [from, to): the last day shown is the day before ``to``
        assert flat(f"Period: {fmt.date(first)} – {fmt.date(last - dt.timedelta(days=1))}") in text
        assert "Meter readings 1" in text and "Mean of meter readings 90 mg/dL" in text


async def test_the_end_of_monitoring_letter_after_delivery(
    services: Services, db: asyncpg.Pool, tmp_path: Path
) -> None:
    team = await make_team(db)
    patient, device = await make_patient(db, team, "Chloé M.", due_in_days=5)
    await add_readings(db, patient, device, [(_local(d, 7, 0), 92.0 + d, "fasting", None) for d in range(3, 40)])
    delivered = dt.datetime.now(PARIS).date() - dt.timedelta(days=3)
    async with db.acquire() as conn:
        await conn.execute("UPDATE patients SET diagnosis_date = $2 WHERE id = $1", patient, _local(45, 0).date())
        await patients.record_delivery(conn, patient, delivered, actor="system")
    key = await api_key(db, "patients:read", teams=[team.id])
    async with browser(services) as http:
        letter = await http.get(
            f"/api/v1/patients/{patient}/report.pdf", params={"kind": "letter", "lang": "fr"}, headers=auth(key)
        )
        last_fortnight = await http.get(f"/api/v1/patients/{patient}/report.pdf", headers=auth(key))
    assert letter.status_code == 200, letter.text
    assert pdf_pages(letter.content, tmp_path) >= 1
    text = pdf_text(letter.content, tmp_path)
    fmt = Formatter(lang="fr", unit="mg/dL", now=dt.datetime.now(dt.UTC))
    assert "Courrier de fin de surveillance" in text and "Chloé M." in text
    assert flat(f"Période : du {fmt.date(_local(45, 0).date())} au {fmt.date(delivered)}") in text
    assert flat(f"Elle a accouché le {fmt.date(delivered)}") in text
    assert "Glycémies capillaires 37" in text  # the whole monitoring, not 14 days
    assert "Carnet glycémique" not in text  # the letter has no day-by-day grid
    assert "Suivi recommandé" in text and "HGPO 75 g" in text
    # the report's default period after the delivery: the last 14 days of the monitoring, up to the delivery day
    fmt_en = Formatter(lang="en", unit="mg/dL", now=dt.datetime.now(dt.UTC))
    fortnight = pdf_text(last_fortnight.content, tmp_path)
    assert flat(f"Period: {fmt_en.date(delivered - dt.timedelta(days=13))} – {fmt_en.date(delivered)}") in fortnight
    assert "Meter readings 14" in fortnight  # 3 … 16 days ago
    audited = await last_audit(db, "patient.report", str(patient))
    assert audited["detail"]["kind"] == "report"


async def test_the_letter_carries_the_postpartum_result_and_its_follow_up(
    services: Services, db: asyncpg.Pool, tmp_path: Path
) -> None:
    team = await make_team(db)
    patient, device = await make_patient(db, team, "Maëlle P.", due_in_days=0)
    delivered = dt.datetime.now(PARIS).date() - dt.timedelta(days=50)
    async with db.acquire() as conn:
        await conn.execute("UPDATE patients SET diagnosis_date = $2 WHERE id = $1", patient, _local(120, 0).date())
        await patients.record_delivery(conn, patient, delivered, actor="system")
    await add_readings(db, patient, device, [(_local(d, 7, 0), 90.0, "fasting", None) for d in range(55, 80)])
    # an OGTT 6 weeks after the birth, recorded as the dashboard and the API record it: 5.8 then 8.9 mmol/L
    async with db.acquire() as conn:
        stored = await postpartum.record(
            conn,
            patient,
            postpartum.Entry(
                test="ogtt_75g",
                unit="mmol/L",
                fasting=Decimal("5.8"),
                two_hour=Decimal("8.9"),
                tested_on=delivered + dt.timedelta(days=42),
            ),
            actor="system",
        )
    key = await api_key(db, "patients:read", teams=[team.id])
    async with browser(services) as http:
        letter = await http.get(
            f"/api/v1/patients/{patient}/report.pdf",
            params={"kind": "letter", "unit": "mmol/L"},
            headers=auth(key),
        )
    assert letter.status_code == 200, letter.text
    text = pdf_text(letter.content, tmp_path)
    fmt = Formatter(lang="en", unit="mmol/L", now=dt.datetime.now(dt.UTC))
    assert "After delivery" in text and fmt.date(delivered + dt.timedelta(days=42)) in text
    assert flat("fasting 5.8 mmol/L, 2 h 8.9 mmol/L") in text
    fmt_words = Formatter(lang="en", unit="mmol/L", now=dt.datetime.now(dt.UTC))
    assert flat(fmt_words.t(f"postpartum.class.{stored.classification}")) in text  # the dashboard's words
    assert "Recommended follow-up" in text and stored.follow_up
    for code in stored.follow_up:
        assert flat(fmt_words.t(f"postpartum.follow.{code}")) in text


async def test_the_dashboard_prints_the_report_under_the_clinicians_session(
    services: Services, db: asyncpg.Pool, tmp_path: Path
) -> None:
    team, other = await make_team(db), await make_team(db)
    email = await make_clinician(db, team, unit="mmol/L", language="fr")
    patient, device = await make_patient(db, team, "Zoé T.")
    theirs, _ = await make_patient(db, other, "Autre P.")
    await add_readings(db, patient, device, [(_local(1, 7, 0), 90.0, "fasting", None)])
    async with browser(services) as http:
        assert (await http.get(f"/patients/{patient}/report.pdf")).status_code in (302, 303)  # not signed in
        await login(http, email)
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        link = page.one("a#report-link")
        answer = await http.get(link.get("href") or "")
        hidden = await http.get(f"/patients/{theirs}/report.pdf")
        letter = await http.get(f"/patients/{patient}/report.pdf", params={"kind": "letter"})
        refused = await http.get(f"/patients/{patient}/report.pdf", params={"from": "yesterday"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    text = pdf_text(answer.content, tmp_path)
    assert "Compte rendu de surveillance glycémique" in text and "Zoé T." in text and "5,0 mmol/L" in text
    assert hidden.status_code == 404
    assert refused.status_code == 422 and "yesterday" in refused.text  # the error page says what was refused
    assert letter.status_code == 200 and "Courrier de fin de surveillance" in pdf_text(letter.content, tmp_path)
    audited = await last_audit(db, "patient.report", str(patient))
    assert audited["actor"].startswith("clinician:")


async def test_a_sensor_wearer_gets_the_agp_and_times_in_ranges(
    services: Services, db: asyncpg.Pool, tmp_path: Path
) -> None:
    team = await make_team(db)
    patient, device = await make_patient(db, team, "Léa C.", device="cgm")
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    sensor = [
        (now - dt.timedelta(minutes=5 * i), 100.0 + 60.0 * ((i // 12) % 3 == 0) - 45.0 * (i % 97 == 0), "unspecified", None)
        for i in range(1, 14 * 288)
    ]  # fmt: skip
    await add_readings(db, patient, device, sensor, kind="cgm")
    key = await api_key(db, "patients:read", teams=[team.id])
    async with browser(services) as http:
        answer = await http.get(f"/api/v1/patients/{patient}/report.pdf", headers=auth(key))
    assert answer.status_code == 200, answer.text
    text = pdf_text(answer.content, tmp_path)
    values = [v for _, v, _, _ in sensor]
    zone_start = dt.datetime.combine(_local(13, 0).date(), dt.time(), PARIS)
    shown = [v for (t, v, _, _) in sensor if t >= zone_start]
    tir = G.time_in_ranges(np.asarray(shown, dtype=float), 1.0)
    assert tir is not None and len(values) >= len(shown)
    fmt = Formatter(lang="en", unit="mg/dL", now=dt.datetime.now(dt.UTC))
    assert "Continuous glucose monitoring" in text and "Ambulatory glucose profile" in text
    assert flat(f"Mean glucose {fmt.g(tir.mean)}") in text
    assert flat(f"Sensor readings {fmt.num(tir.n)}") in text


async def test_the_report_as_a_fhir_diagnostic_report(services: Services, db: asyncpg.Pool, tmp_path: Path) -> None:
    team, other = await make_team(db), await make_team(db)
    patient, device = await make_patient(db, team, "Anaïs V.")
    await add_readings(db, patient, device, [(_local(d, 7, 0), 90.0 + d, "fasting", None) for d in range(1, 20)])
    key = await api_key(db, "patients:read", teams=[team.id])
    theirs = await api_key(db, "patients:read", teams=[other.id])
    first, after = _local(10, 0).date(), _local(3, 0).date()
    async with browser(services) as http:
        found = await http.get(
            "/fhir/DiagnosticReport",
            params=[("patient", f"Patient/{patient}"), ("date", f"ge{first}"), ("date", f"lt{after}")],
            headers=auth(key) | {"Accept-Language": "fr-FR,fr;q=0.9"},
        )
        hidden = await http.get("/fhir/DiagnosticReport", params={"patient": str(patient)}, headers=auth(theirs))
        unknown = await http.get(
            "/fhir/DiagnosticReport", params={"patient": str(patient), "status": "final"}, headers=auth(key)
        )
    assert found.status_code == 200, found.text
    bundle = found.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset" and bundle["total"] == 1
    resource = bundle["entry"][0]["resource"]
    assert resource["resourceType"] == "DiagnosticReport" and resource["subject"]["reference"] == f"Patient/{patient}"
    assert "meta" not in resource and "coding" not in resource["code"]  # a meter patient's: not the CGM IG's PDF
    form = resource["presentedForm"][0]
    assert form["contentType"] == "application/pdf" and form["language"] == "fr"
    pdf = base64.b64decode(form["data"])
    assert pdf_pages(pdf, tmp_path) >= 1
    text = pdf_text(pdf, tmp_path)
    fmt = Formatter(lang="fr", unit="mg/dL", now=dt.datetime.now(dt.UTC))
    last = after - dt.timedelta(days=1)
    assert flat(f"Période : du {fmt.date(first)} au {fmt.date(last)}") in text
    assert "Glycémies capillaires 7" in text  # 10 … 4 days ago
    assert hidden.status_code == 404 and hidden.json()["resourceType"] == "OperationOutcome"
    assert unknown.status_code == 400
