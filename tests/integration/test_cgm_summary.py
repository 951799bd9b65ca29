"""``GET /api/v1/patients/{id}/cgm-summary``: the HL7 CGM IG summary of a period, on real CGM traces (the iglu
example subjects, sent through the device contract): its structure against the IG's own examples, and its figures
against the dashboard's for the same period — the page a clinician reads, and the dashboard's query and code."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import numpy as np
import pytest

from clinician_ui import glycaemia
from telemon import devices, patients, record_queries
from telemon.app.services import Services
from telemon.units import MMOLL_TO_MGDL
from tests.support.data import IGLU_DUE_DATE, IGLU_ZONE, iglu_by_subject
from tests.support.factories import api_key
from tests.test_ui_toolkit import Team, browser, login, make_clinician, make_team, parse_html

IG = json.loads((Path(__file__).parents[1] / "support" / "cgm_ig_examples.json").read_text())
LOINC = "http://loinc.org"
ZONE = ZoneInfo(IGLU_ZONE)
# (subject, the dashboard's last day): the 14 local days the patient page shows up to that day
PERIODS = {"Subject 1": dt.date(2015, 6, 19), "Subject 3": dt.date(2015, 3, 16), "Subject 4": dt.date(2015, 3, 26)}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def sensor_patient(client: httpx.AsyncClient, db: asyncpg.Pool, team: Team, subject: str) -> uuid.UUID:
    """A CGM patient of ``team`` whose sensor sent the subject's whole trace (its local EST times with their
    offset), through the device contract."""
    async with db.acquire() as proxy:
        conn = cast(asyncpg.Connection, proxy)
        patient_id = await patients.create_patient(
            conn,
            team_id=team.id,
            external_id=f"IPP-{uuid.uuid4().hex[:8]}",
            display_name=subject,
            time_zone=IGLU_ZONE,
            due_date=IGLU_DUE_DATE,
        )
        device = await devices.add_device(conn, patient_id=patient_id, kind="cgm")
    items = [
        {"measured_at": f"{local}-05:00", "value": value, "unit": "mg/dL", "kind": "cgm"}
        for local, value in iglu_by_subject()[subject]
    ]
    answer = await client.post(
        "/api/v1/readings", json={"readings": items}, headers={"Authorization": f"Bearer {device.token}"}
    )
    assert answer.status_code == 200 and answer.json()["accepted"] > 0.95 * len(items), answer.text
    return patient_id


def entries_by_profile(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["resource"]["meta"]["profile"][0].rsplit("/", 1)[1]: e["resource"] for e in bundle["entry"]}


def numbers(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)]


async def test_the_summary_has_the_igs_structure(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    patient_id = await sensor_patient(client, db, team, "Subject 4")
    key = await api_key(db, "readings:read", teams=[team.id])
    answer = await client.get(
        f"/api/v1/patients/{patient_id}/cgm-summary",
        params={"from": "2015-03-13", "to": "2015-03-27"},
        headers=auth(key),
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    bundle = answer.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection" and bundle["timestamp"]
    assert len(bundle["entry"]) == 7
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    assert all(u.startswith("urn:uuid:") for u in full_urls) and len(full_urls) == 7
    mine = entries_by_profile(bundle)
    summary = mine["cgm-summary"]
    ig_summary = IG["summary"]
    assert summary["code"]["coding"][0]["code"] == ig_summary["code"]["coding"][0]["code"] == "107931-8"
    assert summary["subject"] == {"reference": f"Patient/{patient_id}"}
    # the IG: the reporting period's dates (YYYY-MM-DD); ``to`` is exclusive, so the period ends the day before
    assert summary["effectivePeriod"] == {"start": "2015-03-13", "end": "2015-03-26"}
    # every member the IG's example summary has, referenced by a full URL of this Bundle
    assert len(summary["hasMember"]) == len(ig_summary["hasMember"]) == 6
    assert {m["reference"] for m in summary["hasMember"]} == full_urls - {
        e["fullUrl"] for e in bundle["entry"] if e["resource"] is summary
    }
    for example in IG["members"]:
        name = example["meta"]["profile"][0].rsplit("/", 1)[1]
        if name == "cgm-summary-mean-glucose-moles-per-volume":
            continue  # mg/dL by default; the molar one below
        resource = mine[name]
        for element in ("resourceType", "status", "category", "code"):
            got = resource[element]
            if element == "code":  # the IG's example holds the code alone; telemon adds its name
                got = {"coding": [{k: c[k] for k in ("system", "code")} for c in got["coding"]]}
            if element == "category":
                got = [{"coding": [{k: c[k] for k in ("system", "code")} for c in cat["coding"]]} for cat in got]
            assert got == example[element], (name, element)
        assert resource["effectivePeriod"] == summary["effectivePeriod"]
        assert resource["subject"] == summary["subject"]
        if "valueQuantity" in example:
            assert {k: resource["valueQuantity"][k] for k in ("system", "code")} == {
                k: example["valueQuantity"][k] for k in ("system", "code")
            }
            assert isinstance(resource["valueQuantity"]["value"], int | float)
        if "component" in example:
            assert [c["code"]["coding"][0]["code"] for c in resource["component"]] == [
                c["code"]["coding"][0]["code"] for c in example["component"]
            ]
            assert all(c["valueQuantity"]["code"] == "%" for c in resource["component"])
            assert sum(c["valueQuantity"]["value"] for c in resource["component"]) == pytest.approx(100, abs=0.03)
            # pregnancy's target range is stated in the resource, not the usual 70–180 mg/dL
            assert "63–140 mg/dL" in resource["component"][2]["code"]["text"]
            assert "Battelino" in resource["note"][0]["text"]

    molar = await client.get(
        f"/api/v1/patients/{patient_id}/cgm-summary",
        params={"from": "2015-03-13", "to": "2015-03-27", "unit": "mmol/L"},
        headers=auth(key),
    )
    mean = entries_by_profile(molar.json())["cgm-summary-mean-glucose-moles-per-volume"]
    assert mean["code"]["coding"][0]["code"] == "105273-7" and mean["valueQuantity"]["code"] == "mmol/L"
    mass = mine["cgm-summary-mean-glucose-mass-per-volume"]["valueQuantity"]["value"]
    assert mean["valueQuantity"]["value"] == pytest.approx(mass / MMOLL_TO_MGDL, abs=0.01)

    # the same resources as the IG's CGM Data Submission Bundle, the input of $submit-cgm-bundle
    submission = (
        await client.get(
            f"/api/v1/patients/{patient_id}/cgm-summary",
            params={"from": "2015-03-13", "to": "2015-03-27", "bundle": "transaction"},
            headers=auth(key),
        )
    ).json()
    assert submission["type"] == "transaction" and submission["timestamp"]
    assert submission["meta"]["profile"] == [
        "http://hl7.org/fhir/uv/cgm/StructureDefinition/cgm-data-submission-bundle"
    ]
    assert [e["request"] for e in submission["entry"]] == [{"method": "POST", "url": "Observation"}] * 7


async def test_the_summary_figures_are_the_dashboards(
    client: httpx.AsyncClient, services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    key = await api_key(db, "readings:read", teams=[team.id])
    traces = iglu_by_subject()
    judged = []  # the subjects whose page shows the figures (enough sensor data), not the insufficient-data note
    for subject, last_day in PERIODS.items():
        patient_id = await sensor_patient(client, db, team, subject)
        first_day = last_day - dt.timedelta(days=13)
        answer = await client.get(
            f"/api/v1/patients/{patient_id}/cgm-summary",
            params={"from": first_day.isoformat(), "to": (last_day + dt.timedelta(days=1)).isoformat()},
            headers=auth(key),
        )
        assert answer.status_code == 200, answer.text
        mine = entries_by_profile(answer.json())
        shares = {
            c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
            for c in mine["cgm-summary-times-in-ranges"]["component"]
        }
        mean = mine["cgm-summary-mean-glucose-mass-per-volume"]["valueQuantity"]["value"]
        gmi = mine["cgm-summary-gmi"]["valueQuantity"]["value"]
        cv = mine["cgm-summary-coefficient-of-variation"]["valueQuantity"]["value"]
        active = mine["cgm-summary-sensor-active-percentage"]["valueQuantity"]["value"]
        [n] = numbers(mine["cgm-summary"]["note"][0]["text"].split(" sensor readings")[0])

        # the dashboard's own query and code over the same 14 local days, to the figure
        start = dt.datetime.combine(first_day, dt.time(0), tzinfo=ZONE)
        end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0), tzinfo=ZONE)
        row = await db.fetchrow(record_queries.CGM_READINGS, patient_id, start, end, IGLU_ZONE)
        assert row is not None
        tir = glycaemia.time_in_ranges(np.asarray(row["v"], dtype=np.float64), (end - start).total_seconds())
        assert tir is not None and tir.n == n
        assert shares == {
            "104642-4": round(tir.very_low, 2),
            "104641-6": round(tir.low, 2),
            "97510-2": round(tir.in_range, 2),
            "104640-8": round(tir.high - tir.very_high, 2),
            "104639-0": round(tir.very_high, 2),
        }
        assert (mean, gmi, cv, active) == (
            round(tir.mean, 1),
            round(tir.gmi, 2),
            round(tir.cv, 2),
            round(tir.coverage, 2),
        )
        worn = {dt.datetime.fromisoformat(t).date() for t, _ in traces[subject]}
        days = mine["cgm-summary-days-of-wear"]["valueQuantity"]["value"]
        assert days == len({d for d in worn if first_day <= d <= last_day})

        # and the page the clinician reads
        async with browser(services) as http:
            await login(http, email)
            page = parse_html((await http.get(f"/patients/{patient_id}", params={"until": last_day.isoformat()})).text)
        section = page.one("section#cgm")
        if not tir.sufficient:
            [shown_n, shown_wear, *_] = numbers(section.one("p.insufficient-detail").text())
            assert shown_n == n and abs(shown_wear - tir.wear_14d) <= 0.5
            assert any("Insufficient data" in note["text"] for note in mine["cgm-summary"]["note"])
            continue
        rows = {r.get("class"): numbers(r.select("td")[0].text())[0] for r in section.select("table.tir tbody tr")}
        assert abs(rows["tir-row-very_low"] - shares["104642-4"]) <= 0.51
        assert abs(rows["tir-row-low"] - shares["104641-6"]) <= 0.51
        assert abs(rows["tir-row-in_range"] - shares["97510-2"]) <= 0.51
        assert abs(rows["tir-row-high"] - (shares["104640-8"] + shares["104639-0"])) <= 0.52
        stats = [numbers(dd.text()) for dd in section.select("dl.cgm-stats dd")]
        assert abs(stats[0][0] - mean) <= 0.55 and abs(stats[1][0] - gmi) <= 0.06 and abs(stats[2][0] - cv) <= 0.06
        assert abs(stats[3][0] - active) <= 0.51 and stats[3][1] == n
        judged.append(subject)
    assert judged == ["Subject 1", "Subject 4"]


async def test_bounds_scope_teams_and_audit(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    other = await make_team(db)
    patient_id = await sensor_patient(client, db, team, "Subject 3")
    key = await api_key(db, "readings:read", teams=[team.id])
    url = f"/api/v1/patients/{patient_id}/cgm-summary"

    # a date is the patient's local midnight: the day of 2015-03-10 holds readings from 15:36 EST on
    day = await client.get(url, params={"from": "2015-03-10", "to": "2015-03-11"}, headers=auth(key))
    instants = await client.get(
        url, params={"from": "2015-03-10T05:00:00Z", "to": "2015-03-11T00:00:00-05:00"}, headers=auth(key)
    )
    a, b = entries_by_profile(day.json()), entries_by_profile(instants.json())
    assert a["cgm-summary"]["note"][0]["text"] == b["cgm-summary"]["note"][0]["text"]
    assert b["cgm-summary"]["effectivePeriod"] == {
        "start": "2015-03-10T00:00:00-05:00",
        "end": "2015-03-11T00:00:00-05:00",
    }
    expected = sum(1 for t, _ in iglu_by_subject()["Subject 3"] if t.startswith("2015-03-10"))
    assert a["cgm-summary"]["note"][0]["text"].startswith(f"{expected} sensor readings")
    audit = await db.fetchrow(
        "SELECT actor, detail FROM audit_log WHERE action = 'cgm_summary.read' AND patient_id = $1 ORDER BY id DESC"
        " LIMIT 1",
        patient_id,
    )
    assert audit is not None and audit["actor"].startswith("api_key:") and audit["detail"]["count"] == expected

    async def refused(status: int, params: dict[str, str] | None = None, who: str = key, path: str = url) -> str:
        answer = await client.get(path, params=params or {}, headers=auth(who))
        assert answer.status_code == status, answer.text
        text: str = answer.json()["detail"]  # the hospital API's errors, as on every /api/v1 route
        return text

    assert "no sensor readings" in await refused(404, {"from": "2015-05-01", "to": "2015-05-02"})
    await refused(404, who=await api_key(db, "readings:read", teams=[other.id]))  # another team's: as missing
    await refused(404, path=f"/api/v1/patients/{uuid.uuid4()}/cgm-summary")
    assert "readings:read" in await refused(403, who=await api_key(db, "patients:read", teams=[team.id]))
    await refused(422, {"from": "2015-03-32"})
    await refused(422, {"from": "2015-03-10T08:00"})  # no offset
    assert "after" in await refused(422, {"from": "2015-03-12", "to": "2015-03-10"})
    assert "366" in await refused(422, {"from": "2014-01-01", "to": "2015-03-10"})
