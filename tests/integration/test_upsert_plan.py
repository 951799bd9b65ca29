"""The reconcile's upsert costs what its candidates cost, whatever the database holds: each candidate's alerts are
looked up by its key. Two plans it once took grew otherwise, measured with ``bench.scale`` (a population chunk of
3,194 candidates: 1,111 ms, then 68 ms): a hash of every resolved alert of the database (an ``EXISTS`` beside an
``OR``), and a nested loop that rescanned the list of covered candidates for each candidate (quadratic)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import asyncpg

from alerts import queries
from alerts.rules import CONFIRMED_RULES, STAYS_DISMISSED_RULES
from alerts.store import CONFIRM_S, FOLDED_READINGS, PENDING_MAX_S

CANDIDATES = 3000


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += nodes(child)
    return found


async def test_the_upsert_looks_each_candidate_up_by_its_key(db: asyncpg.Pool) -> None:
    patients = [uuid.uuid4() for _ in range(CANDIDATES // 10)]
    rules = ["postprandial_above_target", "fasting_above_target", "hypo_l1", "dose_review", "cgm_stale"]
    keys = [(patients[i % len(patients)], rules[i % len(rules)], f"e{i}") for i in range(CANDIDATES)]
    evidence = json.dumps({"reading_ids": [1, 2]})
    args = [
        [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], ["warning"] * CANDIDATES,
        [json.dumps({"code": "x", "params": {}})] * CANDIDATES, [evidence] * CANDIDATES,
        [k[1] == "cgm_stale" for k in keys], ["1,2"] * CANDIDATES, FOLDED_READINGS, dt.datetime.now(dt.UTC),
        float(CONFIRM_S), float(PENDING_MAX_S), CONFIRMED_RULES, STAYS_DISMISSED_RULES,
    ]  # fmt: skip
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(queries.RECONCILE_SETTINGS)
        explained = await conn.fetchval("EXPLAIN (FORMAT JSON) " + queries.UPSERT_ALERTS, *args)
    plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
    every = nodes(plan)
    hashed = [n for n in every if "hashed SubPlan" in json.dumps({k: v for k, v in n.items() if k != "Plans"})]
    assert not hashed, hashed
    rescans = [
        n
        for n in every
        if n["Node Type"] == "Nested Loop"
        and n["Plans"][1]["Node Type"] == "CTE Scan"
        and n["Plans"][1].get("CTE Name") in {"c", "k"}
    ]
    assert not rescans, rescans
