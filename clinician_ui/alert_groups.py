"""Alerts as the dashboard shows them: grouped by rule (per-day rules open one alert a day, shown once with
their number), most severe group first, then the group holding the oldest alert.

Every list is bounded, whatever a patient's alerts hold (a storm of extreme values raised thousands before alerts
were bounded per rule): a group shows its most recent alerts and the number of the others; the history is paged,
most recent first, with a link to the older page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

SEVERITY_RANK = {"info": 0, "warning": 1, "urgent": 2}


@dataclass(frozen=True)
class Alert:
    id: int
    rule: str
    severity: str
    status: str
    message: dict[str, str]
    opened_at: dt.datetime
    evidence: dict[str, Any] | None = None
    acknowledged_at: dt.datetime | None = None
    acknowledged_by: str | None = None
    snoozed_until: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    resolved_by: str | None = None
    folded_episodes: int = 0  # later episodes of the rule folded into this alert while it was open
    folded_last_at: dt.datetime | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any] | asyncpg.Record) -> Alert:
        def get(name: str) -> Any:
            try:
                return row[name]
            except KeyError:
                return None

        return cls(
            id=row["id"],
            rule=row["rule"],
            severity=row["severity"],
            status=row["status"],
            message=row["message"],
            opened_at=row["opened_at"],
            evidence=get("evidence"),
            acknowledged_at=get("acknowledged_at"),
            acknowledged_by=get("acknowledged_by"),
            snoozed_until=get("snoozed_until"),
            resolved_at=get("resolved_at"),
            resolved_by=get("resolved_by"),
            folded_episodes=get("folded_episodes") or 0,
            folded_last_at=get("folded_last_at"),
        )


@dataclass(frozen=True)
class AlertGroup:
    """Alerts of one rule of one patient, newest first."""

    rule: str
    alerts: list[Alert]
    total: int = 0  # unresolved alerts of the rule, shown or not (0: those shown)

    @property
    def not_shown(self) -> int:
        return max(self.total - len(self.alerts), 0)

    @property
    def severity(self) -> str:
        return max((a.severity for a in self.alerts), key=SEVERITY_RANK.__getitem__)

    @property
    def latest(self) -> Alert:
        return self.alerts[0]

    @property
    def earlier(self) -> list[Alert]:
        return self.alerts[1:]

    @property
    def oldest(self) -> dt.datetime:
        return min(a.opened_at for a in self.alerts)

    @property
    def open_ids(self) -> list[int]:
        return [a.id for a in self.alerts if a.status == "open"]

    @property
    def unresolved_ids(self) -> list[int]:
        return [a.id for a in self.alerts if a.status != "resolved"]


def group_alerts(alerts: list[Alert], totals: Mapping[str, int] | None = None) -> list[AlertGroup]:
    """Alerts by rule; ``totals``: each rule's number of alerts when only some of them are given."""
    by_rule: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_rule.setdefault(alert.rule, []).append(alert)
    groups = [
        AlertGroup(rule, sorted(items, key=lambda a: (a.opened_at, a.id), reverse=True), (totals or {}).get(rule, 0))
        for rule, items in by_rule.items()
    ]
    return sorted(groups, key=lambda g: (-SEVERITY_RANK[g.severity], g.oldest, g.rule))


@dataclass(frozen=True)
class PatientAlerts:
    """The patient page's alerts: the open ones by rule (each rule's most recent), and a page of the history."""

    open_groups: list[AlertGroup]
    resolved: list[Alert]
    older: int | None  # the cursor of the older page of the history (the last alert shown), None: no older one


def patient_alerts(rows: list[asyncpg.Record], page: int) -> PatientAlerts:
    """From the rows of the patient page's alert query (asked for ``page`` resolved alerts, given one more)."""
    unresolved = [r for r in rows if r["status"] != "resolved"]
    resolved = [Alert.of(r) for r in rows if r["status"] == "resolved"]
    totals = {r["rule"]: r["in_rule"] for r in unresolved}
    older = resolved[page - 1].id if len(resolved) > page else None
    return PatientAlerts(group_alerts([Alert.of(r) for r in unresolved], totals), resolved[:page], older)


def page_cursor(text: str | None) -> int | None:
    """An alert id given as a page cursor, or None (absent, not a number, out of the range of ids)."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text)
