"""The alerts API answers each alert's message as facts (code and params) and as text in the language the request
accepts and the unit it asks for; /openapi.json documents what integrators receive; an action through the API is
audited with the same details as one from the dashboard (one path: alerts.actions)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import asyncpg
import httpx

from alerts.messages import render
from tests.support.factories import api_key, patient_with_device

PARAMS: dict[str, Any] = {
    "threshold_mgdl": 54.0,
    "count": 1,
    "first_at": "2027-01-12T06:00:00Z",
    "first_local": "2027-01-12 07:00",
    "last_at": "2027-01-12T06:00:00Z",
    "last_local": "2027-01-12 07:00",
    "nadir_mgdl": 50.4,
    "nadir_at": "2027-01-12T06:00:00Z",
    "nadir_local": "2027-01-12 07:00",
    "source": "ADA Standards of Care, section 6",
}
STORED = {"en": "Below 54 mg/dL (3.0 mmol/L). Rule hypo_l2.", "fr": "Sous 54 mg/dL (3,0 mmol/L). Règle hypo_l2."}
INSERT = """
INSERT INTO alerts (patient_id, rule, episode_key, severity, code, params, message, evidence, opened_at)
VALUES ($1, 'hypo_l2', $2, 'urgent', $3, $4, $5, '{"reading_ids": [], "values_mgdl": [], "measured_at": []}', $6)
RETURNING id
"""


async def test_alerts_come_with_code_params_and_text_in_the_readers_language_and_unit(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db)
    now = dt.datetime.now(dt.UTC)
    coded = await db.fetchval(INSERT, setup.patient_id, "t1", "hypo_l2", PARAMS, None, now - dt.timedelta(hours=2))
    stored = await db.fetchval(INSERT, setup.patient_id, "t2", None, None, STORED, now - dt.timedelta(hours=1))
    key = await api_key(db, "alerts:read", "alerts:write", teams=[setup.team_id])
    headers = {"X-API-Key": key, "Accept-Language": "fr-FR, fr;q=0.9, en;q=0.5"}
    query = {"patient_id": str(setup.patient_id), "unit": "mmol/L"}
    answer = await client.get("/api/v1/alerts", params=query, headers=headers)
    assert answer.status_code == 200, answer.text
    first, second = answer.json()["items"]
    assert (first["id"], second["id"]) == (coded, stored)
    assert first["code"] == "hypo_l2" and first["params"] == PARAMS
    assert (first["language"], first["unit"]) == ("fr", "mmol/L")
    assert first["text"] == render("hypo_l2", PARAMS, "fr", "mmol/L", cite_rule=True)
    assert "2,8\u00a0mmol/L" in first["text"] and first["text"].endswith("Règle hypo_l2.")
    assert first["message"]["en"] == render("hypo_l2", PARAMS, "en", "mmol/L", cite_rule=True)
    # an alert stored before codes existed: its stored text, restated in the unit
    assert second["code"] is None and second["params"] is None
    assert second["text"] == "Sous 3,0\u00a0mmol/L. Règle hypo_l2."
    english = (await client.get("/api/v1/alerts", params={"patient_id": str(setup.patient_id)},
                                headers={"X-API-Key": key})).json()["items"][0]  # fmt: skip
    assert (english["language"], english["unit"]) == ("en", "mg/dL") and "50\u00a0mg/dL" in english["text"]
    refused = await client.get("/api/v1/alerts", params={"unit": "mmol"}, headers={"X-API-Key": key})
    assert refused.status_code == 422

    acked = await client.post(f"/api/v1/alerts/{coded}/acknowledge", params={"unit": "g/L"}, headers=headers)
    assert acked.status_code == 200 and acked.json()["unit"] == "g/L" and "0,50\u00a0g/L" in acked.json()["text"]
    until = (now + dt.timedelta(hours=3)).replace(microsecond=0)
    snoozed = await client.post(f"/api/v1/alerts/{stored}/snooze", json={"until": until.isoformat()}, headers=headers)
    assert snoozed.status_code == 200
    trail = await db.fetch(
        "SELECT action, detail FROM audit_log WHERE patient_id = $1 AND action LIKE 'alert.%' ORDER BY id",
        setup.patient_id,
    )
    details = [(r["action"], r["detail"] if isinstance(r["detail"], dict) else json.loads(r["detail"])) for r in trail]
    assert details == [
        ("alert.acknowledge", {"alert_id": coded, "rule": "hypo_l2"}),
        ("alert.snooze", {"alert_id": stored, "rule": "hypo_l2", "until": until.isoformat().replace("+00:00", "Z")}),
    ]


async def test_the_openapi_document_describes_the_alerts_answers(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    listed = document["paths"]["/api/v1/alerts"]["get"]
    assert listed["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AlertsPage"
    }
    assert {p["name"] for p in listed["parameters"]} >= {"unit", "accept-language"}
    for action in ("acknowledge", "snooze", "resolve"):
        answer = document["paths"][f"/api/v1/alerts/{{alert_id}}/{action}"]["post"]["responses"]["200"]
        assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/AlertOut"}
    alert = document["components"]["schemas"]["AlertOut"]
    assert {"code", "params", "text", "message", "language", "unit", "evidence", "severity"} <= set(alert["properties"])
