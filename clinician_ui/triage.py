"""The home page: patients with open alerts, most severe first, then oldest; and the tab of every patient."""

from __future__ import annotations

import datetime as dt
import math
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from alerts.severity import SEVERITY_RANK
from clinician_ui import glycaemia as G
from clinician_ui import queries, web
from clinician_ui.alert_groups import (
    ABOVE_TARGET,
    CLINICAL_ORDER,
    Alert,
    AlertGroup,
    group_alerts,
    priority,
)
from clinician_ui.i18n import RULE_NAMES, Formatter, clock
from clinician_ui.sessions import Clinician
from telemon import audit
from telemon.db import Conn

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
ALERTS_PER_RULE = 10  # a row lists each rule's most severe and recent alerts, and their number
# The lowest severity each filter shows, as the queries number severities (array_position: info 1 … urgent 3).
SEVERITY_FILTERS = {
    "all": SEVERITY_RANK["info"] + 1,
    "warning": SEVERITY_RANK["warning"] + 1,
    "urgent": SEVERITY_RANK["urgent"] + 1,
}
MESSAGE_FILTER = "patient_message"  # TRIAGE_PAGE's "rule" of the patients with an unread message from them
SHARE_WINDOW = dt.timedelta(days=7)
FIGURES_WINDOW = dt.timedelta(days=8)  # covers 7 × 24 h and the last 7 full local days (from local midnight)


@dataclass(frozen=True)
class Filters:
    severity: str = "all"
    rule: str | None = None
    unreviewed_days: int | None = None
    acknowledged: bool = False
    page: int = 1
    messages: bool = False  # only the patients with an unread message from them

    @classmethod
    def parse(cls, params: Any) -> Filters:
        severity = params.get("severity", "all")
        rule = params.get("rule") or None
        unreviewed = (params.get("unreviewed") or "").strip()
        page = params.get("page", "1")
        return cls(
            severity=severity if severity in SEVERITY_FILTERS else "all",
            rule=rule if rule in RULE_NAMES else None,
            unreviewed_days=int(unreviewed) if unreviewed.isdigit() and 0 < int(unreviewed) <= 3650 else None,
            acknowledged=params.get("acknowledged") == "1",
            page=int(page) if page.isdigit() and int(page) > 0 else 1,
            messages=params.get("messages") == "1",
        )

    def query(self, **changes: Any) -> str:
        values = {
            "severity": self.severity if self.severity != "all" else None,
            "rule": self.rule,
            "unreviewed": self.unreviewed_days,
            "acknowledged": "1" if self.acknowledged else None,
            "page": self.page if self.page > 1 else None,
            "messages": "1" if self.messages else None,
        } | changes
        kept = {k: v for k, v in values.items() if v is not None and v != "" and not (k == "page" and v == 1)}
        return "?" + urllib.parse.urlencode(kept) if kept else ""

    @property
    def active(self) -> bool:
        return self != Filters(page=self.page)


@dataclass(frozen=True)
class LastReading:
    at: dt.datetime
    value_mgdl: float
    kind: str
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Figures:
    last: LastReading | None
    share: G.Share  # meter readings, last 7 × 24 h
    cgm_readings: int  # sensor readings, last 7 × 24 h
    cgm_in_range: int
    adherence: G.Adherence | None  # meter patients only

    @property
    def cgm_percent(self) -> float | None:
        return 100.0 * self.cgm_in_range / self.cgm_readings if self.cgm_readings else None


GROUPS_SHOWN = 4


@dataclass(frozen=True)
class PatientFields:
    """What a triage row and an all-patients row show of the patient (see ``_patient_fields``)."""

    patient_id: uuid.UUID
    display_name: str
    external_id: str
    team_name: str
    today: dt.date
    due_date: dt.date
    delivery_date: dt.date | None
    treatment: str
    profile: str
    device_kinds: tuple[str, ...]


@dataclass(frozen=True)
class Row(PatientFields):
    last_reviewed_at: dt.datetime | None
    zone: ZoneInfo
    figures: Figures
    alerts: list[Alert]
    rule_counts: dict[str, int] = field(default_factory=dict)  # each rule's alerts, listed or not
    unread_messages: int = 0  # messages from the patient nobody of the team has read
    unread_since: dt.datetime | None = None

    @property
    def groups(self) -> list[AlertGroup]:
        return group_alerts(self.alerts, self.rule_counts, merge_above_target=True)

    @property
    def severity(self) -> str:
        unread = "warning" if self.unread_messages else "info"  # a message to review weighs as a warning does
        return max((a.severity for a in self.alerts), key=SEVERITY_RANK.__getitem__, default=unread)


@dataclass(frozen=True)
class GroupView:
    """One line of a triage row's alerts, ready to print (formatting in Python keeps the page fast)."""

    rule: str
    rules: str  # space-separated: every rule of the item (one, or the findings about glucose above target)
    latest_id: int
    badge: Markup
    name: str
    count: int
    figures: str  # a merged item: each finding with its number
    event: str  # when the reading that raised it was taken ("" when the alert has no reading)
    event_iso: str
    open_ids: str  # space-separated: the value of the row's "acknowledge" button
    n_open: int
    opened_iso: str
    opened_ago: str
    message: str
    button: str
    button_label: str


@dataclass(frozen=True)
class RowView:
    patient_id: uuid.UUID
    severity: str
    display_name: str
    external_id: str
    team_name: str
    age: str
    treatment: str
    profile: str
    last_value: str | None
    last_kind: str
    last_iso: str
    last_title: str
    last_ago: str
    share: str | None
    share_detail: str
    share_title: str
    adherence: str | None
    adherence_detail: str
    groups: list[GroupView]
    more: str | None
    reviewed_iso: str | None
    reviewed_title: str
    reviewed_ago: str
    unread: str | None = None  # "2 unread messages"
    unread_since: str = ""


def present(row: Row, fmt: Formatter, home_zone: str | None = None) -> RowView:
    """The row's words and figures; times in ``home_zone`` (where the team works: the zone of most patients of
    the page), with the patient's own zone named when hers differs."""
    figures, zone = row.figures, row.zone
    last = figures.last
    last_value = None
    if last is not None:
        last_value = "LO" if "lo" in last.flags else "HI" if "hi" in last.flags else fmt.g(last.value_mgdl)
    share, share_detail, share_title = None, "", ""
    if figures.share.judged:
        share = fmt.pct(figures.share.percent)
        share_detail = fmt.t("value.share_counted", n=figures.share.in_target, judged=figures.share.judged)
        share_title = fmt.t("value.share_counted_title")
    elif figures.cgm_readings:
        share, share_detail = fmt.pct(figures.cgm_percent), fmt.t("value.cgm_tir")
    adherence, adherence_detail = None, ""
    if figures.adherence is not None:
        adherence = fmt.pct(figures.adherence.percent)
        adherence_detail = fmt.t(
            "value.of_prescribed", n=figures.adherence.readings, expected=figures.adherence.expected
        )
    groups = row.groups
    views: list[GroupView] = []
    acknowledge = fmt.t("alert.acknowledge")
    shown_zone = ZoneInfo(home_zone) if home_zone else zone
    for group in groups[:GROUPS_SHOWN]:
        # the alert that explains the item: the most severe, most pressing, most recent
        latest = min(
            group.alerts, key=lambda a: (-SEVERITY_RANK[a.severity], priority(a.rule), -a.opened_at.timestamp())
        )
        n_open = len(group.open_ids)
        merged = group.rule == ABOVE_TARGET
        name = fmt.t("triage.above_target") if merged else fmt.rule(group.rule)
        times = f" ({n_open})" if n_open > 1 else ""
        findings = ""
        if merged:
            findings = " · ".join(fmt.t("triage.finding_count", name=fmt.rule(r), n=n) for r, n in group.totals)
        event = ""
        if latest.event_at is not None:
            when = fmt.when(latest.event_at, shown_zone)
            event = (
                fmt.t("triage.event_at_zone", when=when, local=clock(latest.event_at.astimezone(zone)), zone=zone.key)
                if home_zone and zone.key != home_zone
                else fmt.t("triage.event_at", when=when)
            )
        views.append(
            GroupView(
                rule=group.rule,
                rules=" ".join(group.rules),
                latest_id=latest.id,
                badge=fmt.badge(group.severity),
                name=name,
                count=max(group.total, len(group.alerts)),
                figures=findings,
                event=event,
                event_iso=latest.event_at.isoformat() if latest.event_at else "",
                open_ids=" ".join(str(i) for i in group.open_ids),
                n_open=n_open,
                opened_iso=latest.opened_at.isoformat(),
                opened_ago=fmt.t("triage.alert_opened", ago=fmt.ago(latest.opened_at)),
                message=fmt.message(latest),
                button=f"{acknowledge}{times}",
                button_label=f"{acknowledge}: {name}{f' (×{n_open})' if n_open > 1 else ''}, {row.display_name}",
            )
        )
    hidden = sum(max(g.total, len(g.alerts)) for g in groups[GROUPS_SHOWN:])
    more = None
    if hidden:
        more = fmt.t("triage.more_alerts_one") if hidden == 1 else fmt.t("triage.more_alerts", n=hidden)
    reviewed = row.last_reviewed_at
    return RowView(
        patient_id=row.patient_id,
        severity=row.severity,
        display_name=row.display_name,
        external_id=row.external_id,
        team_name=row.team_name,
        age=fmt.t("value.delivered", date=fmt.date(row.delivery_date))
        if row.delivery_date
        else fmt.ga(row.due_date, row.today),
        treatment=fmt.t("treatment." + row.treatment),
        profile=row.profile,
        last_value=last_value,
        last_kind=fmt.t("device.cgm") if last is not None and last.kind == "cgm" else fmt.t("device.meter"),
        last_iso=last.at.isoformat() if last else "",
        last_title=fmt.when(last.at, zone) if last else "",
        last_ago=fmt.ago(last.at) if last else fmt.t("value.no_readings"),
        share=share,
        share_detail=share_detail,
        share_title=share_title,
        adherence=adherence,
        adherence_detail=adherence_detail,
        groups=views,
        more=more,
        reviewed_iso=reviewed.isoformat() if reviewed else None,
        reviewed_title=fmt.when(reviewed, zone) if reviewed else "",
        reviewed_ago=fmt.ago(reviewed) if reviewed else fmt.t("value.never"),
        unread=(
            fmt.t("triage.unread_one") if row.unread_messages == 1 else fmt.t("triage.unread", n=row.unread_messages)
        )
        if row.unread_messages
        else None,
        unread_since=fmt.t("triage.unread_since", ago=fmt.ago(row.unread_since)) if row.unread_since else "",
    )


async def figures_of(db: Conn, patients: list[asyncpg.Record], now: dt.datetime) -> dict[uuid.UUID, Figures]:
    if not patients:
        return {}
    rows = await db.fetch(
        queries.PATIENT_FIGURES,
        [p["patient_id"] for p in patients],
        now,
        now - FIGURES_WINDOW,
        G.CGM_LOW,
        G.CGM_HIGH,
        now - SHARE_WINDOW,
    )
    by_id = {r["patient_id"]: r for r in rows}
    out: dict[uuid.UUID, Figures] = {}
    for patient in patients:
        r = by_id[patient["patient_id"]]
        zone = ZoneInfo(patient["time_zone"])
        targets = G.targets_for(patient["profile"], patient["treatment"], patient["target_overrides"])
        times = r["t"] or []
        meter = [
            {"value_mgdl": v, "context": c, "meal": m, "minutes_after_meal": mi, "flags": f.split(",") if f else []}
            for t, v, c, m, mi, f in zip(
                times, r["v"] or [], r["context"] or [], r["meal"] or [], r["minutes"] or [], r["flags"] or [],
                strict=True,
            )
            if t >= now - SHARE_WINDOW
        ]  # fmt: skip
        meter_patient = any(k in ("meter", "app") for k in patient["device_kinds"]) or bool(times)
        last = None
        if r["last_at"] is not None:
            last = LastReading(r["last_at"], r["last_value"], r["last_kind"], tuple(r["last_flags"] or ()))
        out[patient["patient_id"]] = Figures(
            last=last,
            share=G.share_in_target(meter, targets),
            cgm_readings=r["cgm_n"] or 0,
            cgm_in_range=r["cgm_in"] or 0,
            adherence=G.adherence(r["local_day"] or [], now.astimezone(zone).date(), patient["readings_per_day"])
            if meter_patient
            else None,
        )
    return out


@router.get("/")
async def triage(request: Request, who: Clinician = Depends(web.clinician)) -> HTMLResponse:
    filters = Filters.parse(request.query_params)
    now = dt.datetime.now(dt.UTC)
    statuses = ["open", "acknowledged"] if filters.acknowledged else ["open"]
    async with web.connection(request) as db:
        records = await db.fetch(
            queries.TRIAGE_PAGE,
            list(who.team_ids),
            statuses,
            SEVERITY_FILTERS[filters.severity],
            MESSAGE_FILTER if filters.messages else filters.rule,
            filters.unreviewed_days,
            PAGE_SIZE,
            (filters.page - 1) * PAGE_SIZE,
            ALERTS_PER_RULE,
            list(CLINICAL_ORDER),
        )
        alert_ids = [i for r in records for i in r["alert_ids"]]
        alert_rows = await db.fetch(queries.ALERTS_BY_IDS, alert_ids, [r["patient_id"] for r in records])
        figures = await figures_of(db, records, now)
        # one audit row per page shown, naming its patients (not one per patient)
        await audit.record(
            db,
            actor=who.actor,
            action="triage.read",
            patient_ids=[r["patient_id"] for r in records],
            detail={"page": filters.page},
        )
    alerts = {a["id"]: Alert.of(a) for a in alert_rows}
    rows = [
        Row(
            **_patient_fields(r, now),
            last_reviewed_at=r["last_reviewed_at"],
            zone=ZoneInfo(r["time_zone"]),
            figures=figures[r["patient_id"]],
            alerts=[alerts[i] for i in r["alert_ids"] if i in alerts],
            rule_counts=dict(zip(r["rules"], r["rule_counts"], strict=True)),
            unread_messages=r["unread_messages"],
            unread_since=r["unread_since"],
        )
        for r in records
    ]
    total = records[0]["total"] if records else 0
    fmt = web.formatter(who)
    zones = Counter(r["time_zone"] for r in records)
    home_zone = zones.most_common(1)[0][0] if zones else None
    context = {
        "tab": "triage",
        "rows": [present(row, fmt, home_zone) for row in rows],
        "total": total,
        "filters": filters,
        "pages": max(1, math.ceil(total / PAGE_SIZE)),
        "rules": [
            (r, fmt.rule_choice(r))
            for r in [r for r in CLINICAL_ORDER if r in RULE_NAMES] + sorted(set(RULE_NAMES) - set(CLINICAL_ORDER))
        ],
        "severities": list(SEVERITY_FILTERS),
        "several_teams": len(who.team_ids) > 1,
        "acknowledged_word": fmt.t("status.acknowledged"),
    }
    return web.render(request, "triage.html", context, who=who)


SNOOZE_CHOICES = (("1h", 1), ("4h", 4), ("24h", 24), ("72h", 72))


@dataclass(frozen=True)
class PatientListRow(PatientFields):
    open_alerts: int
    last_at: dt.datetime | None
    last_reviewed_at: dt.datetime | None


def like_pattern(search: str) -> str | None:
    search = search.strip()[:100]
    if not search:
        return None
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@router.get("/patients")
async def patients(request: Request, who: Clinician = Depends(web.clinician)) -> HTMLResponse:
    search = request.query_params.get("q", "")
    page_text = request.query_params.get("page", "1")
    page = int(page_text) if page_text.isdigit() and int(page_text) > 0 else 1
    now = dt.datetime.now(dt.UTC)
    async with web.connection(request) as db:
        records = await db.fetch(
            queries.PATIENTS_PAGE, list(who.team_ids), like_pattern(search), PAGE_SIZE, (page - 1) * PAGE_SIZE
        )
        await audit.record(
            db,
            actor=who.actor,
            action="patients.list",
            patient_ids=[r["patient_id"] for r in records],
            detail={"page": page},
        )
    rows = [
        PatientListRow(
            **_patient_fields(r, now),
            open_alerts=r["open_alerts"],
            last_at=r["last_at"],
            last_reviewed_at=r["last_reviewed_at"],
        )
        for r in records
    ]
    total = records[0]["total"] if records else 0

    def page_query(number: int) -> str:
        kept = {k: v for k, v in {"q": search.strip(), "page": number if number > 1 else ""}.items() if v}
        return "?" + urllib.parse.urlencode(kept) if kept else ""

    context = {
        "tab": "patients",
        "rows": rows,
        "total": total,
        "search": search,
        "page": page,
        "pages": max(1, math.ceil(total / PAGE_SIZE)),
        "page_query": page_query,
        "several_teams": len(who.team_ids) > 1,
        "archived_ids": {r["patient_id"] for r in records if r["archived_at"] is not None},
    }
    return web.render(request, "patients.html", context, who=who)


def _patient_fields(r: asyncpg.Record, now: dt.datetime) -> dict[str, Any]:
    """What a triage row and an all-patients row show of the patient, from the columns both queries select."""
    return {
        "patient_id": r["patient_id"],
        "display_name": r["display_name"],
        "external_id": r["external_id"],
        "team_name": r["team_name"],
        "today": now.astimezone(ZoneInfo(r["time_zone"])).date(),
        "due_date": r["due_date"],
        "delivery_date": r["delivery_date"],
        "treatment": r["treatment"],
        "profile": r["profile"],
        "device_kinds": tuple(r["device_kinds"]),
    }
