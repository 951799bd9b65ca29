"""Alerts as the dashboard shows them: grouped by rule (per-day rules open one alert a day, shown once with
their number), most severe group first, then the group holding the oldest alert.

Every list is bounded, whatever a patient's alerts hold (a storm of extreme values raised thousands before alerts
were bounded per rule): a group shows its most recent alerts and the number of the others; the history is paged,
most recent first, with a link to the older page."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from alerts.severity import SEVERITY_RANK
from clinician_ui import queries
from clinician_ui.i18n import Formatter
from telemon.db import Conn

# The rules in clinical order: within one severity, what threatens mother or baby now comes first (a level-2
# hypoglycaemia, a predicted or fast fall, then level 1), then missing data that hides such events, then the
# hyperglycaemia findings, then the reminders. The triage list orders patients by it, the rule filter lists it.
CLINICAL_ORDER: tuple[str, ...] = (
    "hypo_l2",
    "cgm_predicted_low",
    "cgm_rapid_fall",
    "hypo_l1",
    "hypo_insulin_floor",
    "ketones_high",
    "blood_pressure_high",
    "ketone_check",
    "fasting_severe",
    "dose_review",
    "cgm_stale",
    "no_data",
    "doses_missing",
    "treatment_review",
    "fasting_pattern",
    "pattern_above_target",
    "consecutive_above_target",
    "fasting_trend_rising",
    "fasting_above_target",
    "postprandial_above_target",
    "cgm_range_review",
    "low_adherence",
    "postpartum_test_due",
)
PRIORITY = {rule: n for n, rule in enumerate(CLINICAL_ORDER)}

# Findings about one problem, glucose above target over the week: the days above target (info), the consecutive
# readings, the weekly share, the fasting pattern and trend. The triage list shows them as one item, with each
# finding's figure, and one button for all of them.
ABOVE_TARGET = "above_target"
ABOVE_TARGET_RULES = frozenset(
    {
        "fasting_above_target",
        "postprandial_above_target",
        "consecutive_above_target",
        "pattern_above_target",
        "fasting_pattern",
        "fasting_trend_rising",
    }
)


def priority(rule: str) -> int:
    return PRIORITY.get(rule, len(PRIORITY))


@dataclass(frozen=True)
class Alert:
    id: int
    rule: str
    severity: str
    status: str
    message: dict[str, str] | None  # the stored text of an alert older than message codes
    opened_at: dt.datetime
    evidence: dict[str, Any] | None = None
    acknowledged_at: dt.datetime | None = None
    acknowledged_by: str | None = None
    snoozed_until: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    resolved_by: str | None = None
    resolved_reason: str | None = None  # the system's reason: "delivered" (monitoring ended) or "cleared"
    folded_episodes: int = 0  # later episodes of the rule folded into this alert while it was open
    folded_last_at: dt.datetime | None = None
    event_at: dt.datetime | None = None  # the last reading of the evidence, when the page asked for it
    code: str | None = None  # the message's code and params (alerts.messages)
    params: dict[str, Any] | None = None

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
            code=get("code"),
            params=get("params"),
            opened_at=row["opened_at"],
            evidence=get("evidence"),
            acknowledged_at=get("acknowledged_at"),
            acknowledged_by=get("acknowledged_by"),
            snoozed_until=get("snoozed_until"),
            resolved_at=get("resolved_at"),
            resolved_by=get("resolved_by"),
            resolved_reason=get("resolved_reason"),
            folded_episodes=get("folded_episodes") or 0,
            folded_last_at=get("folded_last_at"),
            event_at=get("event_at"),
        )


@dataclass(frozen=True)
class AlertGroup:
    """Alerts of one rule of one patient, newest first (or, ``rule`` being ``ABOVE_TARGET``, of the rules about
    glucose above target: ``totals`` has each one's number)."""

    rule: str
    alerts: list[Alert]
    total: int = 0  # unresolved alerts of the rule, shown or not (0: those shown)
    totals: tuple[tuple[str, int], ...] = ()  # merged groups: (rule, number of its alerts), in clinical order

    @property
    def rules(self) -> list[str]:
        return [rule for rule, _ in self.totals] if self.totals else [self.rule]

    @property
    def priority(self) -> int:
        return min(priority(r) for r in self.rules)

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


def _newest_first(alerts: list[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: (a.opened_at, a.id), reverse=True)


def group_alerts(
    alerts: list[Alert], totals: Mapping[str, int] | None = None, *, merge_above_target: bool = False
) -> list[AlertGroup]:
    """Alerts by rule; ``totals``: each rule's number of alerts when only some of them are given. With
    ``merge_above_target`` the findings about glucose above target are one group (one problem, one line).
    Order: severity, then clinical priority, then the group waiting longest."""
    totals = totals or {}
    by_rule: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_rule.setdefault(alert.rule, []).append(alert)
    groups = []
    merged: list[Alert] = []
    for rule, items in by_rule.items():
        if merge_above_target and rule in ABOVE_TARGET_RULES:
            merged.extend(items)
        else:
            groups.append(AlertGroup(rule, _newest_first(items), totals.get(rule, 0)))
    if merged:
        rules = sorted({a.rule for a in merged}, key=priority)
        counts = tuple((r, max(totals.get(r, 0), sum(a.rule == r for a in merged))) for r in rules)
        groups.append(AlertGroup(ABOVE_TARGET, _newest_first(merged), sum(n for _, n in counts), counts))
    return sorted(groups, key=lambda g: (-SEVERITY_RANK[g.severity], g.priority, g.oldest, g.rule))


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


async def actor_words(db: Conn, rows: Sequence[asyncpg.Record], fmt: Formatter) -> dict[str, str]:
    """Who acted on these alerts, in words, for the actors that are not clinicians: the system ("telemon,
    automatically") and API keys (their label: what the team named the integration), never a raw id."""
    words = {"system": fmt.t("actor.system")}
    keys: set[uuid.UUID] = set()
    for row in rows:
        for column in ("acknowledged_by", "snoozed_by", "resolved_by"):
            actor = row[column]
            if actor and actor.startswith("api_key:"):
                try:
                    keys.add(uuid.UUID(actor.removeprefix("api_key:")))
                except ValueError:
                    words[actor] = fmt.t("actor.api_key_unknown")
    if keys:
        labels = {r["id"]: r["label"] for r in await db.fetch(queries.API_KEY_LABELS, list(keys))}
        for key in keys:
            label = labels.get(key)
            words[f"api_key:{key}"] = fmt.t("actor.api_key", label=label) if label else fmt.t("actor.api_key_unknown")
    return words


def page_cursor(text: str | None) -> int | None:
    """An alert id given as a page cursor, or None (absent, not a number, out of the range of ids)."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text)
