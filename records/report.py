"""The patient report and the end-of-monitoring letter, as PDF: what a care team files in the hospital record.

One builder serves the hospital API (``records.report_api``), the dashboard's "PDF report" link and the FHIR
``DiagnosticReport`` (``records.report_fhir``): :func:`load` reads what the period holds and audits the read (one
row per request, as every read of patient data), :func:`render_pdf` lays it out. The report is the dashboard's
patient page on paper: the same logbook (``clinician_ui.glycaemia``), the same SVG charts (``clinician_ui.charts``)
and the same words and numbers (``clinician_ui.i18n.Formatter``), in the reader's language and glucose unit; alert
texts come from their codes through ``alerts.messages.render``.

Two kinds: ``report`` (default: the last 14 local days, with the day-by-day logbook) and ``letter`` (default: the
whole monitoring, from the diagnosis to the delivery; the summary, the plan's history, the postpartum result and
the follow-up it calls for, without the day-by-day grid).

Layout is CPU work (WeasyPrint, pure Python over Pango): :func:`report_pdf` runs it on ``records.pdf``'s worker
threads, so the event loop keeps serving while a report is drawn."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import numpy as np
from fastapi import HTTPException
from fastapi.responses import Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from alerts import messages
from clinician_ui import charts
from clinician_ui import glycaemia as G
from clinician_ui.i18n import LANGUAGES, Formatter
from records import pdf
from records import report_queries as queries
from records.report_texts import report_text
from telemon import audit, record_queries, units
from telemon import postpartum as postpartum_tests
from telemon import treatment as treatment_plans
from telemon.db import Conn
from telemon.periods import bound_instant, parse_bound

KINDS = ("report", "letter")
DEFAULT_DAYS = 14  # the dashboard's logbook and the CGM consensus's 14 days (Battelino 2019)
MAX_DAYS = 310  # a whole pregnancy (about 280 days) and its postpartum weeks; longer is a typing error
ALERTS_SHOWN = 200
NOTES_SHOWN = 200
MEASURES_SHOWN = 300  # ketones, blood pressures and weights of a period: a few a day at most
# The reports' own threads: more requests wait in its queue, not in threads of the loop's default executor (which
# others use, e.g. telemon.mail).

templates = Environment(
    loader=PackageLoader("records", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)

# The charts' classes, inside each SVG: WeasyPrint draws an inline SVG with the styles it carries, not the page's.
CHART_STYLE = (
    "<style>"
    "text{fill:#59636e;font-family:'DejaVu Sans',sans-serif;font-size:12px}"
    ".band{fill:#e6f4ea}.grid{stroke:#e4e7eb;stroke-width:1}.day{stroke:#d0d5db;stroke-width:1}"
    ".fasting-line{stroke:#1e6b32;stroke-dasharray:6 4;stroke-width:1.5;fill:none}"
    ".range-line{stroke:#1e6b32;stroke-width:1;stroke-dasharray:4 3;fill:none}"
    ".cgm-line{fill:none;stroke:#2456a6;stroke-width:1.5}"
    ".pt-in{fill:#1e8a3a}.pt-above{fill:#c25400}.pt-hypo{fill:#c0001a}.pt-none{fill:#59636e}"
    ".pt path,.pt circle{stroke:#fff;stroke-width:1}"
    ".agp-outer{fill:#c9d9ee}.agp-iqr{fill:#7fa6d6}.agp-median{fill:none;stroke:#123a6b;stroke-width:2.5}"
    ".tir-very_low{fill:#8b0010}.tir-low{fill:#e0455a}.tir-in_range{fill:#1e8a3a}.tir-high{fill:#c25400}"
    ".tir-bar text{fill:#fff;font-weight:700;font-size:14px}"
    "</style>"
)


class ReportRefused(Exception):
    """A request the report cannot answer: ``status`` 404 (no such patient among the teams) or 422 (the period,
    the kind, the language or the unit), with a ``detail`` that says what is wrong."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, and the local days it covers (the first and the last, inclusive)."""

    start: dt.datetime
    end: dt.datetime
    first_day: dt.date
    last_day: dt.date

    @property
    def days(self) -> list[dt.date]:
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + dt.timedelta(days=i) for i in range(count)]


@dataclass(frozen=True)
class ReportData:
    """What one report shows, read from the database; :func:`render_pdf` needs nothing else."""

    kind: str
    lang: str
    unit: str
    now: dt.datetime
    printed_by: str
    patient: dict[str, Any]
    period: Period
    meter_rows: list[asyncpg.Record]
    cgm_t: np.ndarray[Any, np.dtype[np.int64]]
    cgm_v: np.ndarray[Any, np.dtype[np.float64]]
    cgm_minutes: np.ndarray[Any, np.dtype[np.int64]]
    alerts: list[asyncpg.Record]
    alerts_total: int
    actor_names: dict[str, str]
    notes: list[asyncpg.Record]
    plans: list[treatment_plans.Plan]  # every version, newest first
    postpartum: list[dict[str, Any]] = field(default_factory=list)  # telemon.postpartum's tests, as JSON
    plan_authors: dict[str, str] = field(default_factory=dict)
    doses: list[asyncpg.Record] = field(default_factory=list)  # insulin doses of the period, beside the readings
    measures: list[asyncpg.Record] = field(default_factory=list)  # ketones, blood pressures, weights of the period


def check_choice(kind: str, lang: str, unit: str) -> None:
    if kind not in KINDS:
        raise ReportRefused(422, f"kind: {kind[:20]!r} is not one of {', '.join(KINDS)}")
    if lang not in LANGUAGES:
        raise ReportRefused(422, f"lang: {lang[:20]!r} is not one of {', '.join(LANGUAGES)}")
    if unit not in units.UNITS:
        raise ReportRefused(422, f"unit: {unit[:20]!r} is not one of {', '.join(units.UNITS)}")


def period_of(
    kind: str, from_text: str | None, to_text: str | None, patient: Mapping[str, Any], now: dt.datetime
) -> Period:
    """The period asked for (``from`` inclusive, ``to`` exclusive: a date is the patient's local midnight, or an
    ISO timestamp with its offset, ``telemon.periods``), or the kind's default: a report the last 14 local days of
    the monitoring (up to the delivery day, else today; from a ``from`` given, its 14 days); a letter the whole
    monitoring, from the diagnosis (else the enrolment) to the delivery day (else today), its last ``MAX_DAYS``."""
    zone_name = patient["time_zone"]
    zone = ZoneInfo(zone_name)
    try:
        start = bound_instant(parse_bound(from_text, "from"), "from", zone_name)
        end = bound_instant(parse_bound(to_text, "to"), "to", zone_name)
    except HTTPException as refused:
        raise ReportRefused(422, str(refused.detail)) from None
    today = now.astimezone(zone).date()
    if end is None:
        # monitoring ends at the delivery (DESIGN §3): what follows it is no glycaemic monitoring to report
        last = today if patient["delivery_date"] is None else min(patient["delivery_date"], today)
        if kind == "report" and start is not None:  # 14 days from the start given
            last = min(today, start.astimezone(zone).date() + dt.timedelta(days=DEFAULT_DAYS - 1))
        end = _midnight(last + dt.timedelta(days=1), zone)
    if start is None:
        if kind == "letter":
            first = patient["diagnosis_date"] or patient["created_at"].astimezone(zone).date()
            first = max(first, (end - dt.timedelta(days=MAX_DAYS)).astimezone(zone).date() + dt.timedelta(days=1))
        else:
            first = (end - dt.timedelta(microseconds=1)).astimezone(zone).date() - dt.timedelta(days=DEFAULT_DAYS - 1)
        start = _midnight(first, zone)
    if start >= end:
        raise ReportRefused(422, "from: the period's start must come before its end (to)")
    if end - start > dt.timedelta(days=MAX_DAYS):
        raise ReportRefused(422, f"to: a report covers at most {MAX_DAYS} days")
    first_day = start.astimezone(zone).date()
    last_day = (end - dt.timedelta(microseconds=1)).astimezone(zone).date()
    return Period(start, end, first_day, last_day)


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)


async def load(
    db: Conn | asyncpg.Pool,
    patient_id: uuid.UUID,
    team_ids: Sequence[uuid.UUID],
    *,
    actor: str,
    printed_by: str,
    kind: str = "report",
    from_text: str | None = None,
    to_text: str | None = None,
    lang: str = "en",
    unit: str = units.MGDL,
    now: dt.datetime | None = None,
) -> ReportData:
    """Everything a report of ``patient_id`` shows, if she is a patient of ``team_ids`` (else ``ReportRefused``
    404, as for a missing one); the read is audited as ``actor`` (``patient.report``, with the kind and period)."""
    check_choice(kind, lang, unit)
    now = now or dt.datetime.now(dt.UTC)
    row = await db.fetchrow(record_queries.PATIENT, patient_id, list(team_ids))
    if row is None:
        raise ReportRefused(404, f"no patient {patient_id}")
    patient = dict(row)
    period = period_of(kind, from_text, to_text, patient, now)
    meter_rows = await db.fetch(record_queries.METER_READINGS, patient_id, period.start, period.end)
    doses = await db.fetch(record_queries.INSULIN_DOSES, patient_id, period.start, period.end)
    measures = await db.fetch(queries.MEASURES, patient_id, period.start, period.end, MEASURES_SHOWN)
    cgm = await db.fetchrow(record_queries.CGM_READINGS, patient_id, period.start, period.end, patient["time_zone"])
    assert cgm is not None  # an aggregate without GROUP BY always answers one row
    alerts = await db.fetch(queries.ALERTS, patient_id, period.start, period.end, ALERTS_SHOWN)
    notes = await db.fetch(queries.NOTES, patient_id, period.start, period.end, NOTES_SHOWN)
    plans = await treatment_plans.history(db, patient_id)
    postpartum = [test.as_json() for test in await postpartum_tests.tests_of(db, patient_id)]
    names = await _actor_names(db, [*_alert_actors(alerts), *(p.created_by for p in plans)], lang)
    await audit.record(
        db,
        actor=actor,
        action="patient.report",
        patient_id=patient_id,
        detail={"kind": kind, "from": period.start.isoformat(), "to": period.end.isoformat(), "lang": lang},
    )
    return ReportData(
        kind=kind,
        lang=lang,
        unit=unit,
        now=now,
        printed_by=printed_by,
        patient=patient,
        period=period,
        meter_rows=list(meter_rows),
        cgm_t=np.asarray(cgm["t"], dtype=np.int64),
        cgm_v=np.asarray(cgm["v"], dtype=np.float64),
        cgm_minutes=np.asarray(cgm["local_minute"], dtype=np.int64),
        alerts=list(alerts),
        alerts_total=alerts[0]["total"] if alerts else 0,
        actor_names=names,
        notes=list(notes),
        plans=plans,
        postpartum=postpartum,
        doses=list(doses),
        measures=list(measures),
    )


def _alert_actors(alerts: Sequence[asyncpg.Record]) -> list[str]:
    return [a[c] for a in alerts for c in ("acknowledged_by", "snoozed_by", "resolved_by") if a[c]]


async def _actor_names(db: Conn | asyncpg.Pool, actors: Sequence[str], lang: str) -> dict[str, str]:
    """Who acted, in words: a clinician's name, an integration's label, telemon itself; never a raw id."""
    clinicians: set[uuid.UUID] = set()
    keys: set[uuid.UUID] = set()
    for actor in actors:
        kind, _, ident = actor.partition(":")
        try:
            if kind == "clinician":
                clinicians.add(uuid.UUID(ident))
            elif kind == "api_key":
                keys.add(uuid.UUID(ident))
        except ValueError:
            continue
    fmt = Formatter(lang=lang, unit=units.MGDL, now=dt.datetime.now(dt.UTC))
    names = {"system": fmt.t("actor.system")}
    if clinicians:
        for r in await db.fetch(queries.CLINICIAN_NAMES, list(clinicians)):
            names[f"clinician:{r['id']}"] = r["display_name"]
    if keys:
        for r in await db.fetch(queries.API_KEY_LABELS, list(keys)):
            names[f"api_key:{r['id']}"] = fmt.t("actor.api_key", label=r["label"])
    for actor in actors:
        if actor not in names:
            names[actor] = fmt.t("actor.api_key_unknown") if actor.startswith("api_key:") else actor
    return names


# --- layout -------------------------------------------------------------------------------------------------------


def _chart(svg: Markup) -> Markup:
    """A dashboard chart with its styles inside (after the ``<svg …>`` tag)."""
    head, sep, tail = str(svg).partition(">")
    return Markup(head + sep + CHART_STYLE + tail)  # noqa: S704 - the chart's own escaped markup, and a constant


@dataclass(frozen=True)
class PlanChange:
    plan: treatment_plans.Plan
    who: str


SENSOR_WINDOW = dt.timedelta(days=G.SUFFICIENT_DAYS)


def _last_sensor_days(data: ReportData) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """The sensor readings of the period's last 14 days: the times in ranges and the AGP are the consensus's 14-day
    figures (Battelino 2019), as the dashboard shows them, whatever the period (a letter covers the pregnancy); the
    glucose chart shows every reading."""
    since = (data.period.end - SENSOR_WINDOW).timestamp()
    return np.asarray(data.cgm_t >= since)


@dataclass(frozen=True)
class Figures:
    """The period's figures, as the dashboard computes them (``clinician_ui.glycaemia``)."""

    meter_n: int
    meter_mean: float | None
    share: G.Share
    per_day: float | None
    cgm_n: int  # every sensor reading of the period
    tir: G.TimeInRanges | None  # of its last 14 days


def figures(data: ReportData, targets: G.Targets, placed: Sequence[Mapping[str, Any]]) -> Figures:
    glucose = [r for r in placed if "control_solution" not in (r["flags"] or ())]
    values = [r["value_mgdl"] for r in glucose]
    days = len(data.period.days)
    last = _last_sensor_days(data)
    period_s = (
        min(data.period.end, data.now) - max(data.period.start, data.period.end - SENSOR_WINDOW)
    ).total_seconds()
    return Figures(
        meter_n=len(values),
        meter_mean=sum(values) / len(values) if values else None,
        share=G.share_in_target(glucose, targets),
        per_day=len(values) / days if days else None,
        cgm_n=len(data.cgm_t),
        tir=G.time_in_ranges(data.cgm_v[last], period_s) if last.any() else None,
    )


@dataclass(frozen=True)
class PostpartumView:
    date: str
    test: str
    result: str
    classification: str
    code: str
    follow_up: tuple[str, ...]  # the follow-up the classification asks for, in words


def _postpartum_view(test: Mapping[str, Any], fmt: Formatter) -> PostpartumView:
    """One postpartum test (``telemon.postpartum.StoredTest.as_json``) in the dashboard's words: values in the
    reader's unit, the classification and the follow-up codes stored with it."""
    kind = str(test.get("test") or "")
    parts = []
    for column, key in (("fasting_mgdl", "postpartum.value.fasting"), ("two_hour_mgdl", "postpartum.value.two_hour")):
        value = test.get(column)
        if isinstance(value, int | float):
            parts.append(fmt.t(key, value=fmt.g(float(value))))
    if isinstance(test.get("hba1c_percent"), int | float):
        parts.append(fmt.t("postpartum.value.hba1c", value=fmt.pct(test["hba1c_percent"], 1)))
    if isinstance(test.get("hba1c_mmol_mol"), int | float):
        parts.append(fmt.t("postpartum.value.hba1c", value=f"{fmt.num(test['hba1c_mmol_mol'])} mmol/mol"))
    code = str(test.get("classification") or "")
    shown_day = str(test.get("date") or "")[:10]
    with contextlib.suppress(ValueError):  # a date shows as a date, anything else as it is
        shown_day = fmt.date(dt.date.fromisoformat(shown_day))
    follow = [str(f) for f in test.get("follow_up") or ()]
    return PostpartumView(
        date=shown_day,
        test=fmt.t(f"postpartum.test.{kind}"),
        result=", ".join(parts),
        classification=fmt.t(f"postpartum.class.{code}"),
        code=code,
        follow_up=tuple(fmt.t(f"postpartum.follow.{f}") for f in follow),
    )


def _postpartum_tests(rows: Sequence[Mapping[str, Any]], fmt: Formatter) -> list[PostpartumView]:
    """Oldest first: by test date, then by recording (the last one is the current result)."""
    ordered = sorted(rows, key=lambda t: (str(t.get("date") or ""), int(t.get("id") or 0)))
    return [_postpartum_view(t, fmt) for t in ordered]


def _followup(tests: list[PostpartumView], delivered: bool) -> str | None:
    """The report's own follow-up sentence, when the current test carries no follow-up codes (or there is none)."""
    if not delivered or (tests and tests[-1].follow_up):
        return None
    if not tests:
        return "report.followup.pending"
    latest = tests[-1].code
    if latest == "diabetes":
        return "report.followup.diabetes"
    if latest in ("impaired_fasting_glucose", "impaired_glucose_tolerance", "elevated_hba1c"):
        return "report.followup.impaired"
    return "report.followup.normal"


def render_html(data: ReportData) -> str:
    """The report as one HTML document (its styles inline), ready for WeasyPrint."""
    fmt = Formatter(lang=data.lang, unit=data.unit, now=data.now)
    p = data.patient
    zone = ZoneInfo(p["time_zone"])
    targets = G.targets_for(p["profile"], p["treatment"], p["target_overrides"])
    days = data.period.days
    placed = G.placed_rows(data.meter_rows, zone)
    book = G.logbook(data.meter_rows, targets, zone, days, doses=data.doses)
    entries = sorted((e for d in book for c in d.cells.values() for e in c.entries), key=lambda e: e.local)
    has_cgm = "cgm" in p["device_kinds"] or len(data.cgm_t) > 0
    numbers = figures(data, targets, placed)
    chart = charts.glucose_chart(
        fmt=fmt,
        zone=zone,
        days=days,
        meter=entries,
        cgm_t=data.cgm_t,
        cgm_v=data.cgm_v,
        targets=targets,
        cgm=has_cgm,
    )
    tir = numbers.tir
    recent = _last_sensor_days(data)
    in_force = next((plan for plan in data.plans if plan.created_at and plan.created_at < data.period.end), None)
    changes = [
        PlanChange(plan, data.actor_names.get(plan.created_by, plan.created_by))
        for plan in reversed(data.plans)
        if plan.created_at and data.period.start <= plan.created_at < data.period.end
    ]
    tests = _postpartum_tests(data.postpartum, fmt)
    delivered = p["delivery_date"] is not None

    def r(key: str, **values: object) -> str:
        return report_text(key, data.lang, **values)

    def alert_message(alert: asyncpg.Record) -> str:
        return messages.render(alert["code"], alert["params"], data.lang, data.unit, fallback=alert["message"])

    context: dict[str, Any] = fmt.functions() | {
        "r": r,
        "fmt": fmt,
        "kind": data.kind,
        "lang": data.lang,
        "unit": data.unit,
        "p": p,
        "zone": zone,
        "period": data.period,
        "end_day": min(data.period.last_day, data.now.astimezone(zone).date()),
        "printed_by": data.printed_by,
        "targets": targets,
        "nan": math.isnan,
        "logbook": book,
        "slots": G.SLOTS,
        "chart": _chart(chart),
        "has_cgm": has_cgm,
        "figures": numbers,
        "tir": tir,
        "tir_bar": _chart(charts.tir_bar(fmt, tir)) if tir else None,
        "tir_segments": charts.TIR_SEGMENTS,
        "tir_label": lambda segment: charts.tir_label(fmt, segment),
        "tir_goal": lambda segment: charts.tir_goal(fmt, segment),
        "agp": _chart(charts.agp_chart(fmt, G.agp(data.cgm_v[recent], data.cgm_minutes[recent])))
        if recent.any()
        else None,
        "alerts": data.alerts,
        "alerts_more": max(0, data.alerts_total - len(data.alerts)),
        "alert_message": alert_message,
        "actor_names": data.actor_names,
        "notes": data.notes,
        "in_force": in_force,
        "changes": changes,
        "postpartum": tests,
        "followup": _followup(tests, delivered),
        "delivered": delivered,
        "ketones": [m for m in data.measures if m["kind"] == "ketone"],
        "pressures": [m for m in data.measures if m["kind"] == "blood_pressure"],
        "weights": [m for m in data.measures if m["kind"] == "weight"],
    }
    return templates.get_template("report.html").render(context)


def render_pdf(data: ReportData) -> bytes:
    """The report as PDF bytes. CPU work: call it off the event loop (:func:`report_pdf` does)."""
    return pdf.html_to_pdf(render_html(data))


async def report_pdf(
    db: Conn | asyncpg.Pool,
    patient_id: uuid.UUID,
    team_ids: Sequence[uuid.UUID],
    **options: Any,
) -> tuple[ReportData, bytes]:
    """:func:`load` (audited), then :func:`render_pdf` in a worker thread, off the event loop."""
    data = await load(db, patient_id, team_ids, **options)
    return data, await pdf.render(lambda: render_html(data))


def pdf_response(data: ReportData, document: bytes) -> Response:
    """The PDF as an answer, named for the patient and the period."""
    return pdf.pdf_response(document, filename(data))


def filename(data: ReportData) -> str:
    """The PDF's download name: the patient's hospital number (else her id), the kind and the period."""
    ident = "".join(ch for ch in (data.patient["external_id"] or str(data.patient["id"])) if ch.isalnum() or ch in "-_")
    return f"{data.kind}-{ident or 'patient'}-{data.period.first_day}-{data.period.last_day}.pdf"
