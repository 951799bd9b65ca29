"""Server-side SVG charts: the 14-day glucose chart with the target band, the AGP, the time-in-ranges bar.

Charts are plain inline SVG (no script), coloured by CSS classes of ``static/app.css`` so they print and pass a
strict Content-Security-Policy. Each point carries a ``<title>`` (value, time, judgement) and each chart a title
and a description; reading markers differ in shape as well as colour (circle in target, triangle up above,
triangle down hypo), so colour is never the only signal. The logbook table is the chart's accessible data twin.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
from markupsafe import Markup

from alerts import profiles as P
from clinician_ui import glycaemia as G
from clinician_ui.i18n import Formatter
from telemon import units

Y_MIN, Y_MAX = 40.0, 300.0  # mg/dL shown; values outside are drawn at the edge
TICKS = {
    units.MGDL: (70.0, 100.0, 140.0, 180.0, 250.0),
    units.MMOLL: (4.0, 5.5, 7.8, 10.0, 14.0),
    units.GL: (0.7, 1.0, 1.4, 1.8, 2.5),
}
CGM_MEAN_BIN_S = 15 * 60
CGM_GAP_S = 30 * 60
MAX_DAY_LABELS = 21  # day labels under the glucose chart: every day up to three weeks, then every n-th day


@dataclass(frozen=True)
class Frame:
    width: int = 1200
    height: int = 300
    left: int = 64
    right: int = 12
    top: int = 12
    bottom: int = 34

    @property
    def plot_w(self) -> float:
        return float(self.width - self.left - self.right)

    @property
    def plot_h(self) -> float:
        return float(self.height - self.top - self.bottom)

    def y(self, mgdl: float) -> float:
        clamped = min(max(mgdl, Y_MIN), Y_MAX)
        return round(self.top + (Y_MAX - clamped) / (Y_MAX - Y_MIN) * self.plot_h, 1)


def _svg_open(frame: Frame, ident: str, title: str, desc: str, css: str) -> list[str]:
    return [
        f'<svg class="chart {css}" viewBox="0 0 {frame.width} {frame.height}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(desc)}</desc>',
    ]


def _y_axis(frame: Frame, fmt: Formatter) -> list[str]:
    parts = ['<g class="axis">']
    for tick in TICKS[fmt.unit]:
        mgdl = units.to_mgdl(tick, fmt.unit)
        y = frame.y(mgdl)
        parts.append(f'<line class="grid" x1="{frame.left}" x2="{frame.width - frame.right}" y1="{y}" y2="{y}"/>')
        parts.append(f'<text x="{frame.left - 6}" y="{y + 4}" text-anchor="end">{escape(fmt.gn(mgdl))}</text>')
    parts.append(
        f'<text class="unit" x="{frame.left - 6}" y="{frame.height - 6}" text-anchor="end">{escape(fmt.unit)}</text>'
    )
    parts.append("</g>")
    return parts


def _band(frame: Frame, x0: float, x1: float, low: float, high: float, css: str) -> str:
    y_top, y_bottom = frame.y(high), frame.y(low)
    return (
        f'<rect class="{css}" x="{x0:.1f}" y="{y_top}" width="{x1 - x0:.1f}" height="{max(y_bottom - y_top, 0):.1f}"/>'
    )


def _marker(status: str, x: float, y: float) -> str:
    if status == G.ABOVE:
        return f'<path d="M{x:.1f} {y - 5.5:.1f}L{x + 5:.1f} {y + 3.5:.1f}L{x - 5:.1f} {y + 3.5:.1f}Z"/>'
    if status == G.HYPO:
        return f'<path d="M{x:.1f} {y + 5.5:.1f}L{x + 5:.1f} {y - 3.5:.1f}L{x - 5:.1f} {y - 3.5:.1f}Z"/>'
    if status == G.NONE:
        return f'<path d="M{x:.1f} {y - 5:.1f}L{x + 5:.1f} {y:.1f}L{x:.1f} {y + 5:.1f}L{x - 5:.1f} {y:.1f}Z"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.2"/>'


def _paths(xs: Sequence[float], ys: Sequence[float], breaks: Sequence[bool]) -> str:
    """One SVG path through the points, lifted (``M``) where ``breaks`` is true."""
    out: list[str] = []
    for x, y, lift in zip(xs, ys, breaks, strict=True):
        out.append(f"{'M' if lift or not out else 'L'}{x:.1f} {y:.1f}")
    return "".join(out)


def glucose_chart(
    *,
    fmt: Formatter,
    zone: dt.tzinfo,
    days: Sequence[dt.date],
    meter: Sequence[G.Entry],
    cgm_t: np.ndarray[Any, np.dtype[np.int64]],
    cgm_v: np.ndarray[Any, np.dtype[np.float64]],
    targets: G.Targets,
    cgm: bool,
    plan_changes: Sequence[tuple[dt.datetime, str]] = (),
) -> Markup:
    """The readings of ``days`` (oldest first) on one time axis, with the target band; ``plan_changes`` (when a new
    version of the treatment plan came into force, and its words) are drawn as vertical marks, each with its title,
    and said in the chart's description for those who do not see it."""
    frame = Frame()
    start = dt.datetime.combine(days[0], dt.time(0), tzinfo=zone).timestamp()
    end = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time(0), tzinfo=zone).timestamp()
    scale = frame.plot_w / (end - start)

    def x_of(epoch: float) -> float:
        return frame.left + (epoch - start) * scale

    if cgm:
        low, high = G.CGM_LOW, G.CGM_HIGH
        desc = fmt.t(
            "patient.chart.cgm_desc", start=fmt.day(days[0]), end=fmt.day(days[-1]), low=fmt.g(low), high=fmt.g(high)
        )
    else:
        low, high = targets.hypo, targets.usual_post
        desc = fmt.t(
            "patient.chart.desc",
            n=len(meter),
            start=fmt.day(days[0]),
            end=fmt.day(days[-1]),
            low=fmt.g(low),
            high=fmt.g(high),
            fasting=fmt.g(targets.fasting),
        )
    shown_changes = [(at, title) for at, title in plan_changes if start <= at.timestamp() < end]
    if shown_changes:
        desc += " " + fmt.t("chart.plan_changes", changes="; ".join(title for _, title in shown_changes))
    parts = _svg_open(frame, "glucose-chart", fmt.t("patient.chart"), desc, "glucose-chart")
    right = frame.width - frame.right
    parts.append(_band(frame, frame.left, right, low, high, "band"))
    parts += _y_axis(frame, fmt)
    if not cgm:
        y = frame.y(targets.fasting)
        parts.append(f'<line class="fasting-line" x1="{frame.left}" x2="{right}" y1="{y}" y2="{y}"/>')
    parts.append('<g class="days">')
    label_every = -(-len(days) // MAX_DAY_LABELS)  # a long period (the printed letter's) keeps legible labels
    for index, day in enumerate(days):
        x0 = x_of(dt.datetime.combine(day, dt.time(0), tzinfo=zone).timestamp())
        parts.append(
            f'<line class="day" x1="{x0:.1f}" x2="{x0:.1f}" y1="{frame.top}" y2="{frame.top + frame.plot_h}"/>'
        )
        if index % label_every:
            continue
        label_x = x0 + 43200 * scale
        parts.append(
            f'<text x="{label_x:.1f}" y="{frame.height - 14}" text-anchor="middle">{escape(fmt.short_date(day))}</text>'
        )
    parts.append("</g>")
    if len(cgm_t):
        # 15-minute means keep the SVG small (at most 96 points a day) without hiding a low
        bins = (cgm_t - int(start)) // CGM_MEAN_BIN_S
        unique, first = np.unique(bins, return_index=True)
        sums = np.add.reduceat(cgm_v, first)
        counts = np.diff(np.append(first, len(cgm_v)))
        means = sums / counts
        mins = np.minimum.reduceat(cgm_v, first)
        shown = np.where(mins < G.CGM_VERY_LOW, mins, means)
        t_mid = start + unique * CGM_MEAN_BIN_S + CGM_MEAN_BIN_S / 2
        breaks = np.concatenate(([True], np.diff(t_mid) > CGM_GAP_S)).tolist()
        xs = [x_of(t) for t in t_mid.tolist()]
        ys = [frame.y(v) for v in shown.tolist()]
        parts.append(f'<path class="cgm-line" d="{_paths(xs, ys, breaks)}"/>')
    if shown_changes:
        parts.append('<g class="plan-changes">')
        bottom = frame.top + frame.plot_h
        for at, title in shown_changes:
            x = x_of(at.timestamp())
            parts.append(
                f'<g class="plan-change" data-at="{escape(at.isoformat())}"><title>{escape(title)}</title>'
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.top}" y2="{bottom:.1f}"/>'
                f'<path d="M{x - 5:.1f} {frame.top}L{x + 5:.1f} {frame.top}L{x:.1f} {frame.top + 8}Z"/></g>'
            )
        parts.append("</g>")
    for status in (G.IN, G.NONE, G.ABOVE, G.HYPO):
        group = [e for e in meter if e.judgement.status == status]
        if not group:
            continue
        parts.append(f'<g class="pt pt-{status}">')
        for entry in group:
            x = x_of(entry.local.timestamp())
            y = frame.y(entry.value_mgdl)
            label = f"{fmt.when(entry.local)} — {fmt.g(entry.value_mgdl)} — {fmt.t('judge.' + status)}"
            parts.append(f"<g><title>{escape(label)}</title>{_marker(status, x, y)}</g>")
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text inside went through escape()


def agp_chart(fmt: Formatter, profile: G.Agp) -> Markup:
    frame = Frame(height=280)
    bins = len(profile.minutes)
    step = frame.plot_w / bins

    def x_of(b: float) -> float:
        return frame.left + (b + 0.5) * step

    desc = fmt.t("patient.agp.desc", low=fmt.g(G.CGM_LOW), high=fmt.g(G.CGM_HIGH))
    parts = _svg_open(frame, "agp-chart", fmt.t("patient.agp"), desc, "agp-chart")
    right = frame.width - frame.right
    parts.append(_band(frame, frame.left, right, G.CGM_LOW, G.CGM_HIGH, "band"))
    parts += _y_axis(frame, fmt)
    for limit in (G.CGM_LOW, G.CGM_HIGH):
        y = frame.y(limit)
        parts.append(f'<line class="range-line" x1="{frame.left}" x2="{right}" y1="{y}" y2="{y}"/>')
    parts.append('<g class="axis">')
    for hour in range(0, 25, 3):
        x = frame.left + hour * 60 / (1440 / bins) * step
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{frame.top}" y2="{frame.top + frame.plot_h}"/>')
        anchor = "start" if hour == 0 else "end" if hour == 24 else "middle"
        parts.append(f'<text x="{x:.1f}" y="{frame.height - 14}" text-anchor="{anchor}">{hour:02d}:00</text>')
    parts.append("</g>")
    data = profile.percentiles
    present = ~np.isnan(data[:, 2])
    # contiguous runs of bins with data: one polygon per run and band
    runs: list[tuple[int, int]] = []
    b = 0
    while b < bins:
        if present[b]:
            e = b
            while e + 1 < bins and present[e + 1]:
                e += 1
            runs.append((b, e))
            b = e + 1
        else:
            b += 1
    for lo_col, hi_col, css in ((0, 4, "agp-outer"), (1, 3, "agp-iqr")):
        for b0, b1 in runs:
            upper = [f"{x_of(i):.1f},{frame.y(float(data[i, hi_col]))}" for i in range(b0, b1 + 1)]
            lower = [f"{x_of(i):.1f},{frame.y(float(data[i, lo_col]))}" for i in range(b1, b0 - 1, -1)]
            parts.append(f'<polygon class="{css}" points="{" ".join(upper + lower)}"/>')
    for b0, b1 in runs:
        xs = [x_of(i) for i in range(b0, b1 + 1)]
        ys = [frame.y(float(data[i, 2])) for i in range(b0, b1 + 1)]
        parts.append(f'<path class="agp-median" d="{_paths(xs, ys, [False] * len(xs))}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text inside went through escape()


TIR_SEGMENTS = ("very_low", "low", "in_range", "high")


def tir_bar(fmt: Formatter, tir: G.TimeInRanges) -> Markup:
    """A horizontal stacked bar of the four pregnancy ranges; the table beside it carries the same numbers."""
    width, height = 1200, 44
    shares = {"very_low": tir.very_low, "low": tir.low, "in_range": tir.in_range, "high": tir.high}
    title = fmt.t("patient.tir")
    desc = "; ".join(f"{tir_label(fmt, s)}: {fmt.pct(shares[s])}" for s in TIR_SEGMENTS)
    parts = [
        f'<svg class="chart tir-bar" viewBox="0 0 {width} {height}" role="img" aria-labelledby="tir-title tir-desc">',
        f'<title id="tir-title">{escape(title)}</title><desc id="tir-desc">{escape(desc)}</desc>',
    ]
    x = 0.0
    for segment in TIR_SEGMENTS:
        w = width * shares[segment] / 100.0
        if w > 0:
            parts.append(
                f'<rect class="tir-{segment}" x="{x:.1f}" y="0" width="{w:.1f}" height="{height}">'
                f"<title>{escape(tir_label(fmt, segment))}: {escape(fmt.pct(shares[segment]))}</title></rect>"
            )
            if w > 48:
                parts.append(
                    f'<text x="{x + w / 2:.1f}" y="{height / 2 + 5}" text-anchor="middle">'
                    f"{escape(fmt.pct(shares[segment]))}</text>"
                )
        x += w
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text inside went through escape()


def tir_goal(fmt: Formatter, segment: str) -> str:
    """The pregnancy goal of a range, from the engine's own constants (Battelino 2019)."""
    pct = {
        "very_low": P.CGM_TBR54_MAX_PCT,
        "low": P.CGM_TBR63_MAX_PCT,
        "in_range": P.CGM_TIR_MIN_PCT,
        "high": P.CGM_TAR_MAX_PCT,
    }[segment]
    return fmt.t(f"patient.tir.goal_{segment}", pct=fmt.pct(pct), v63=fmt.g(G.CGM_LOW))


def tir_label(fmt: Formatter, segment: str) -> str:
    below_low = units.to_mgdl(units.from_mgdl(G.CGM_LOW, units.MGDL) - 1, units.MGDL)
    return fmt.t(
        f"patient.tir.{segment}",
        v54=fmt.g(G.CGM_VERY_LOW),
        v62=fmt.g(below_low),
        v63=fmt.g(G.CGM_LOW),
        v140=fmt.g(G.CGM_HIGH),
    )
