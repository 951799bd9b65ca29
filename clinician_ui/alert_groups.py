"""Alerts as the dashboard shows them: grouped by rule (per-day rules open one alert a day, shown once with
their number), most severe group first, then the group holding the oldest alert."""

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
        )


@dataclass(frozen=True)
class AlertGroup:
    """Alerts of one rule of one patient, newest first."""

    rule: str
    alerts: list[Alert]

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


def group_alerts(alerts: list[Alert]) -> list[AlertGroup]:
    by_rule: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_rule.setdefault(alert.rule, []).append(alert)
    groups = [
        AlertGroup(rule, sorted(items, key=lambda a: (a.opened_at, a.id), reverse=True))
        for rule, items in by_rule.items()
    ]
    return sorted(groups, key=lambda g: (-SEVERITY_RANK[g.severity], g.oldest, g.rule))
