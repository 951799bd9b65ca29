"""The migration that gives the alerts stored as text their message code and params: derived from their rule and
evidence (wall-clock times in the patient's time zone), they are exactly what the engine now stores for the same
evidence; an alert whose evidence lacks a fact keeps its stored text, which the renderer shows."""

from __future__ import annotations

import json
import uuid
from importlib import resources
from typing import Any

import asyncpg

from alerts import rules
from alerts.messages import render
from tests.support.cohorts import random_cohort
from tests.support.factories import patient_with_device

# The cohorts' UTC offsets as time zones without summer time (Etc/GMT-1 is UTC+1).
ZONES = {0: "UTC", 3600: "Etc/GMT-1", 7200: "Etc/GMT-2", -5 * 3600: "Etc/GMT+5", -8 * 3600: "Etc/GMT+8",
         19800: "Asia/Kolkata", 13 * 3600: "Etc/GMT-13", -10 * 3600: "Etc/GMT+10"}  # fmt: skip
OLD_TEXT = {"en": "stored text. Rule x.", "fr": "texte stocké. Règle x."}
INSERT = """
INSERT INTO alerts (patient_id, rule, episode_key, severity, status, message, evidence)
VALUES ($1, $2, $3, $4, 'resolved', $5, $6) RETURNING id
"""


def _sql() -> str:
    return resources.files("telemon.migrations").joinpath("0009_alert_codes.sql").read_text(encoding="utf-8")


async def test_stored_alerts_get_the_code_and_params_the_engine_makes(db: asyncpg.Pool) -> None:
    cohort = random_cohort(4, 40)
    # the rules that existed when the migration was written: alerts of the treatment record came later, with codes
    before = [spec.rule for spec in rules.RULES if spec.family not in ("measurements", "treatment")]
    results = rules.evaluate(cohort, before)
    patients: dict[int, uuid.UUID] = {}
    expected: dict[int, tuple[str, dict[str, Any]]] = {}
    async with db.acquire() as conn:
        for result in results:
            for k, p in enumerate(result.patient.tolist()):
                if p not in patients:
                    zone = ZONES[int(cohort.utc_offset_s[p])]
                    patients[p] = (await patient_with_device(db, time_zone=zone)).patient_id
                alert_id = await conn.fetchval(
                    INSERT,
                    patients[p],
                    result.rule,
                    f"{result.episode[k]}-{uuid.uuid4().hex[:6]}",
                    result.severity[k],
                    OLD_TEXT,
                    json.loads(json.dumps(result.evidence[k])),
                )
                expected[alert_id] = (result.code[k], result.params[k])
        # an alert whose evidence lacks its facts (written by hand, or by an older engine) keeps its text
        bare = await conn.fetchval(
            INSERT,
            next(iter(patients.values())),
            "hypo_l2",
            "t1",
            "urgent",
            OLD_TEXT,
            {"reading_ids": [], "values_mgdl": []},
        )
        await conn.execute(_sql())
        rows = await conn.fetch("SELECT id, code, params, message FROM alerts WHERE id = ANY($1::bigint[])",
                                [*expected, bare])  # fmt: skip
        again = await conn.execute(_sql())
    by_id = {r["id"]: r for r in rows}
    assert len({code for code, _ in expected.values()}) >= 15
    for alert_id, (code, params) in expected.items():
        row = by_id[alert_id]
        assert (row["code"], json.dumps(row["params"], sort_keys=True)) == (code, json.dumps(params, sort_keys=True))
        assert row["message"] == OLD_TEXT  # kept beside the facts
    assert by_id[bare]["code"] is None and by_id[bare]["params"] is None
    assert render(None, None, "en", "g/L", fallback=by_id[bare]["message"]) == "stored text."
    assert again.endswith(" 0")  # converted once
