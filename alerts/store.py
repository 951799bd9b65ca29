"""The alert store: reconciling rule candidates with the alerts table, the clinician's actions, and NOTIFY.

One open alert per (patient, rule, episode): new evidence updates it; stateful rules resolve their alert
themselves when the condition clears; evaluating twice opens nothing twice. An alert stores its message as a code
and params (facts), never as text. Every change is announced on the PostgreSQL channel
:data:`telemon.channels.ALERTS` (payload: JSON with id, patient_id, rule, severity, status, change).

Bounded per (patient, rule): one open alert is enough to act on. A per-reading rule's new episode while the rule
already has an alert that is open (and not snoozed) does not open another: it is folded into that alert as
evidence (a count, the time of the last, the most recent ``FOLDED_READINGS`` reading ids), and recorded so that no
later evaluation counts or opens it again. Several new episodes at once open the earliest, the others fold into
it. An acknowledged or snoozed alert takes no new episode (a new one opens a fresh alert, which takes the next
ones): a clinician who acknowledged a hypo still sees the next one. So a storm of extreme values gives at most one
open alert per rule, plus one per clinician action, however many episodes it holds.

A stateful alert of ``CONFIRMED_RULES`` (stale sensor, no data, patterns, adherence, CGM review) opens only when
two evaluations at least ``CONFIRM_S`` apart found its condition (the first sighting waits in ``alert_pending``): never from one evaluation
made in the middle of a sync's backfill. A suggestion a person dismissed (``STAYS_DISMISSED_RULES``: a dose review)
stays dismissed for its episode (the plan version and the suggestion): it may come back only as a new one.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from alerts import queries
from alerts.cohort import Candidates
from alerts.rules import CONFIRMED_RULES, STAYS_DISMISSED_RULES
from alerts.severity import SEVERITY_RANK
from telemon import channels
from telemon.db import Conn

FOLDED_READINGS = 20  # reading ids of the most recent folded episodes an alert keeps
# A stateful condition opens its alert once two evaluations this far apart found it ("two evaluations a few
# minutes apart"): a stale sensor raises its warning at 17 rather than 15 minutes, never during a backfill.
CONFIRM_S = 120
# A first sighting older than this confirms nothing (no evaluation came in between to clear it): it starts anew.
PENDING_MAX_S = 3600
# The stateful rules that wait for that confirmation (alerts.rules.registry: the stateful rules but those judging
# only fresh readings, which a backfill's old readings never set off, and a predicted low must not wait).

_Key = tuple[uuid.UUID, str, str]  # patient, rule, episode
_Candidate = tuple[str, dict[str, Any], dict[str, Any], bool]  # severity, message code and params, evidence, stateful


@dataclass(frozen=True)
class Change:
    id: int
    patient_id: uuid.UUID
    rule: str
    severity: str
    status: str
    change: str  # opened | updated | resolved | acknowledged | snoozed

    def payload(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "patient_id": str(self.patient_id),
                "rule": self.rule,
                "severity": self.severity,
                "status": self.status,
                "change": self.change,
            }
        )


async def reconcile(
    conn: Conn, results: Sequence[Candidates], patient_ids: Sequence[uuid.UUID], *, now: float | None = None
) -> list[Change]:
    """Apply one evaluation of ``patient_ids`` (cohort order), made at ``now`` (epoch seconds; default: the
    clock), in the caller's transaction; returns the changes.

    A stateful alert of ``CONFIRMED_RULES`` that is not open yet opens only when its condition held across two
    evaluations at least ``CONFIRM_S`` apart. One evaluation alone is not enough: in the middle of a sync's
    backfill a sensor's last reading may be days old, a patient's week half loaded; the next evaluation, once the
    sync is stored, sees the truth. The first sighting is recorded (``alert_pending``) and forgotten when an evaluation finds the condition
    cleared (``RESOLVE_CLEARED``); for a condition that time alone raises, the scheduled pass is the second
    evaluation."""
    upserts: dict[_Key, _Candidate] = {}
    evaluated: list[tuple[uuid.UUID, str]] = []
    firing: list[tuple[uuid.UUID, str, str]] = []
    for result in results:
        # the columns once per rule (a rule's evidence and params are built here if they were left lazy)
        severity, episode, evidence = result.severity, result.episode, result.evidence
        code, params = result.code, result.params
        for k, p in enumerate(result.patient.tolist()):
            patient = patient_ids[p]
            key = (patient, result.rule, episode[k])
            candidate = (
                severity[k],
                {"code": code[k], "params": params[k]},
                evidence[k],
                result.stateful,
            )
            previous = upserts.get(key)
            if previous is None or SEVERITY_RANK[candidate[0]] >= SEVERITY_RANK[previous[0]]:
                upserts[key] = candidate
            if result.stateful:
                firing.append(key)
        if result.stateful:
            evaluated += [(patient_ids[int(p)], result.rule) for p in result.evaluated.nonzero()[0]]
    changes: list[Change] = []
    if upserts:
        keys = list(upserts)
        values = [upserts[k] for k in keys]
        rows = await conn.fetch(
            queries.UPSERT_ALERTS,
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [v[0] for v in values],
            [v[1] for v in values],
            [v[2] for v in values],
            [v[3] for v in values],
            ["" if v[3] else _last_readings(v[2]) for v in values],
            FOLDED_READINGS,
            dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC),
            float(CONFIRM_S),
            float(PENDING_MAX_S),
            CONFIRMED_RULES,
            STAYS_DISMISSED_RULES,
        )
        changes += [_change(r, "opened" if r["opened"] else "updated") for r in rows if r["kind"] == "written"]
        folds = [(keys[r["ord"] - 1], r["target"]) for r in rows if r["kind"] == "fold"]
        if folds:
            changes += await _fold(conn, [(k, t, upserts[k]) for k, t in folds])
    if evaluated:
        rows = await conn.fetch(
            queries.RESOLVE_CLEARED,
            [e[0] for e in evaluated],
            [e[1] for e in evaluated],
            [f[0] for f in firing],
            [f[1] for f in firing],
            [f[2] for f in firing],
        )
        changes += [_change(r, "resolved") for r in rows]
    await notify(conn, changes)
    return changes


def _last_readings(evidence: dict[str, Any]) -> str:
    """The last reading ids of a candidate's evidence, joined by commas (what a folded episode leaves behind)."""
    ids = evidence.get("reading_ids") if isinstance(evidence, dict) else None
    if not isinstance(ids, list):
        return ""
    return ",".join(str(i) for i in ids[-FOLDED_READINGS:] if isinstance(i, int))


async def _fold(conn: Conn, folds: Sequence[tuple[_Key, int, _Candidate]]) -> list[Change]:
    """Fold new episodes into the open alerts of their rules (see the module's docstring)."""
    rows = [(key, alert_id, c[0], _last_readings(c[2])) for key, alert_id, c in folds]
    if not rows:
        return []
    updated = await conn.fetch(
        queries.FOLD_EPISODES,
        [r[0][0] for r in rows],
        [r[0][1] for r in rows],
        [r[0][2] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        FOLDED_READINGS,
    )
    return [_change(r, "updated") for r in updated]


async def notify(conn: Conn, changes: Sequence[Change]) -> None:
    if changes:
        await conn.execute(queries.NOTIFY, [c.payload() for c in changes], channels.ALERTS)


def _change(row: asyncpg.Record, change: str) -> Change:
    return Change(row["id"], row["patient_id"], row["rule"], row["severity"], row["status"], change)


# --- a clinician's or an integration's actions ------------------------------------------------------------------


async def acknowledge(conn: Conn, alert_id: int, actor: str) -> asyncpg.Record | None:
    return await _act(conn, queries.ACKNOWLEDGE, "acknowledged", alert_id, actor)


async def snooze(conn: Conn, alert_id: int, actor: str, until: dt.datetime) -> asyncpg.Record | None:
    return await _act(conn, queries.SNOOZE, "snoozed", alert_id, actor, until)


async def resolve(conn: Conn, alert_id: int, actor: str) -> asyncpg.Record | None:
    return await _act(conn, queries.RESOLVE, "resolved", alert_id, actor)


async def _act(conn: Conn, sql: str, change: str, alert_id: int, actor: str, *extra: Any) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(sql, alert_id, actor, *extra)
    if row is not None:
        await notify(conn, [_change(row, change)])
    return row
