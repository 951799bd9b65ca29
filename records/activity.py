"""The monthly activity report of a care team: what a maternity unit shows its quality review and the payer of
telemonitoring. For one calendar month (in the zone most of the team's patients live in): the patients monitored
and their monitored days, readings received by source, alerts raised and what became of them by rule and
severity, the median and 90th-percentile time to acknowledge an urgent alert, messages exchanged, the patients
silent for more than 7 days at the month's end, and the postpartum tests done.

One computation (:func:`activity`) for the dashboard's page, its CSV (:func:`activity_csv`) and its PDF."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from records import activity_queries as queries
from telemon.csv_export import csv_text
from telemon.db import Conn

SILENT_DAYS = 7  # a patient with no reading for a week is no longer monitored in practice
_MONTH = re.compile(r"(\d{4})-(\d{2})")


class MonthError(ValueError):
    """A month is written YYYY-MM."""


@dataclass(frozen=True)
class Activity:
    team: str
    month: str  # YYYY-MM
    zone: str
    start: dt.datetime
    end: dt.datetime  # the next month's first instant
    until: dt.datetime  # the end of what has happened: ``end``, or now for the month under way
    patients: int
    monitored_days: int
    readings: list[dict[str, Any]]  # source, kind, readings
    measurements: list[dict[str, Any]]  # kind, items
    alerts: list[dict[str, Any]]  # rule, severity, raised, acknowledged, resolved_by_person, cleared
    urgent: int
    urgent_acknowledged: int
    acknowledge_median_s: float | None
    acknowledge_p90_s: float | None
    messages_from_patients: int
    messages_from_team: int
    silent: list[dict[str, Any]]  # id, display_name, external_id, last_reading_at
    postpartum_tests: list[dict[str, Any]]  # classification, tests

    @property
    def readings_total(self) -> int:
        return sum(int(r["readings"]) for r in self.readings)


def parse_month(text: str | None, today: dt.date) -> tuple[int, int]:
    """``YYYY-MM``; none given: the month before ``today`` (the last whole one)."""
    if not text:
        last = today.replace(day=1) - dt.timedelta(days=1)
        return last.year, last.month
    found = _MONTH.fullmatch(text.strip())
    if found is None or not 1 <= int(found[2]) <= 12 or not 2000 <= int(found[1]) <= 2999:
        raise MonthError(f"month: {text[:20]!r} is not a month written YYYY-MM")
    return int(found[1]), int(found[2])


async def activity(conn: Conn, team_id: uuid.UUID, month: str | None, *, now: dt.datetime | None = None) -> Activity:
    now = now or dt.datetime.now(dt.UTC)
    zone_name = await conn.fetchval(queries.TEAM_ZONE, team_id) or "UTC"
    zone = ZoneInfo(zone_name)
    year, number = parse_month(month, now.astimezone(zone).date())
    first = dt.date(year, number, 1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    start = dt.datetime.combine(first, dt.time(), zone).astimezone(dt.UTC)
    end = dt.datetime.combine(following, dt.time(), zone).astimezone(dt.UTC)
    until = min(end, max(now, start))
    span = (team_id, start, end, until)
    monitored = await conn.fetchrow(queries.MONITORED, *span)
    urgent = await conn.fetchrow(queries.URGENT_ACKNOWLEDGEMENT, *span[:3])
    messages = await conn.fetchrow(queries.MESSAGES, *span[:3])
    assert monitored is not None and urgent is not None and messages is not None
    return Activity(
        team=await conn.fetchval(queries.TEAM_NAME, team_id),
        month=f"{year:04d}-{number:02d}",
        zone=zone_name,
        start=start,
        end=end,
        until=until,
        patients=monitored["patients"],
        monitored_days=monitored["monitored_days"],
        readings=[dict(r) for r in await conn.fetch(queries.READINGS_BY_SOURCE, *span[:3])],
        measurements=[dict(r) for r in await conn.fetch(queries.MEASUREMENTS_BY_KIND, *span[:3])],
        alerts=[dict(r) for r in await conn.fetch(queries.ALERTS_BY_RULE, *span[:3])],
        urgent=urgent["urgent"],
        urgent_acknowledged=urgent["acknowledged"],
        acknowledge_median_s=urgent["median_s"],
        acknowledge_p90_s=urgent["p90_s"],
        messages_from_patients=messages["from_patients"],
        messages_from_team=messages["from_team"],
        silent=[dict(r) for r in await conn.fetch(queries.SILENT, team_id, until)],
        postpartum_tests=[dict(r) for r in await conn.fetch(queries.POSTPARTUM_TESTS, team_id, first, following)],
    )


def activity_csv(report: Activity) -> str:
    """The report as one long table: ``section, item, detail, value`` (a spreadsheet pivots it as it likes)."""
    rows: list[tuple[object, ...]] = [
        ("period", "month", report.zone, report.month),
        ("patients", "monitored", "", report.patients),
        ("patients", "monitored_days", "", report.monitored_days),
    ]
    rows += [("readings", r["source"], r["kind"], r["readings"]) for r in report.readings]
    rows += [("measurements", r["kind"], "", r["items"]) for r in report.measurements]
    for a in report.alerts:
        for figure in ("raised", "acknowledged", "resolved_by_person", "cleared"):
            rows.append((f"alerts_{figure}", a["rule"], a["severity"], a[figure]))
    rows += [
        ("urgent_alerts", "raised", "", report.urgent),
        ("urgent_alerts", "acknowledged", "", report.urgent_acknowledged),
        ("urgent_alerts", "median_seconds_to_acknowledge", "", _seconds(report.acknowledge_median_s)),
        ("urgent_alerts", "p90_seconds_to_acknowledge", "", _seconds(report.acknowledge_p90_s)),
        ("messages", "from_patients", "", report.messages_from_patients),
        ("messages", "from_team", "", report.messages_from_team),
        ("silent_patients", "more_than_7_days", "", len(report.silent)),
    ]
    rows += [("silent_patient", s["external_id"], _iso(s["last_reading_at"]), s["display_name"]) for s in report.silent]
    rows += [("postpartum_tests", t["classification"], "", t["tests"]) for t in report.postpartum_tests]
    return csv_text(("section", "item", "detail", "value"), rows)


def _seconds(value: float | None) -> int | None:
    return None if value is None else round(value)


def _iso(value: dt.datetime | None) -> str:
    return "" if value is None else value.isoformat()
