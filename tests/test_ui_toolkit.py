"""The dashboard tests' toolkit: a small HTML tree (stdlib ``html.parser``, simple CSS selectors), signing in,
and records made through telemon's own functions; plus tests of the server-side SVG charts parsed with it."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import numpy as np

from clinician_ui import charts
from clinician_ui import glycaemia as G
from clinician_ui.i18n import Formatter
from telemon import devices, patients, teams
from telemon.app.factory import create_app
from telemon.app.services import Services

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)
    parent: Node | None = None

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        parts: list[str] = []
        for child in self.children:
            parts.append(child if isinstance(child, str) else child.text())
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def iter(self) -> list[Node]:
        out: list[Node] = []
        for child in self.children:
            if isinstance(child, Node):
                out.append(child)
                out.extend(child.iter())
        return out

    def select(self, selector: str) -> list[Node]:
        """Descendants matching a selector of simple parts (``tag#id.class[attr=value]``) joined by spaces."""
        found = [self]
        for part in selector.split():
            matcher = _compile(part)
            seen: set[int] = set()
            nxt: list[Node] = []
            for node in found:
                for d in node.iter():
                    if id(d) not in seen and matcher(d):
                        seen.add(id(d))
                        nxt.append(d)
            found = nxt
        return found

    def one(self, selector: str) -> Node:
        found = self.select(selector)
        assert len(found) == 1, f"{selector!r}: {len(found)} matches"
        return found[0]

    def get(self, name: str) -> str | None:
        return self.attrs.get(name)


_PART = re.compile(r"^(?P<tag>[a-zA-Z][\w-]*)?(?P<rest>(?:[#.][\w-]+|\[[^\]]+\])*)$")


def _compile(part: str):  # type: ignore[no-untyped-def]
    match = _PART.match(part)
    assert match, f"unsupported selector part {part!r}"
    tag = match["tag"]
    checks = re.findall(r"([#.])([\w-]+)|\[([\w-]+)(?:([*^$]?=)\"?([^\"\]]*)\"?)?\]", match["rest"])

    def matches(node: Node) -> bool:
        if tag and node.tag != tag:
            return False
        for kind, name, attr, op, value in checks:
            if kind == "#" and node.attrs.get("id") != name:
                return False
            if kind == "." and name not in node.classes:
                return False
            if attr:
                if attr not in node.attrs:
                    return False
                have = node.attrs[attr]
                if op == "=" and have != value:
                    return False
                if op == "*=" and value not in have:
                    return False
                if op == "^=" and not have.startswith(value):
                    return False
                if op == "$=" and not have.endswith(value):
                    return False
        return True

    return matches


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Node(tag, {k: v or "" for k, v in attrs}, parent=self.current))

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse_html(text: str) -> Node:
    builder = _Builder()
    builder.feed(text)
    builder.close()
    return builder.root


# --- signing in and test records -------------------------------------------------------------------------------

PASSWORD = "correct horse battery"


@contextlib.asynccontextmanager
async def browser(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a cookie jar of its own (one clinician's browser) on the real app."""
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(transport=transport, base_url="http://telemon.test") as http:
        yield http


async def login(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    token = csrf_of((await http.get("/login")).text)
    return await http.post("/login", data={"email": email, "password": password, "csrf_token": token, "next": "/"})


def form_of(button: Node) -> tuple[str, list[tuple[str, str]]]:
    """What a browser sends when ``button`` is pressed: its form's action and fields, and the button's own value."""
    form: Node | None = button
    while form is not None and form.tag != "form":
        form = form.parent
    assert form is not None, "the button is in no form"
    fields: list[tuple[str, str]] = []
    for node in form.iter():
        name = node.get("name")
        if not name:
            continue
        if node.tag == "input" and node.get("type") not in ("submit", "button", "checkbox", "radio"):
            fields.append((name, node.get("value") or ""))
        elif node.tag == "input" and "checked" in node.attrs:
            fields.append((name, node.get("value") or "on"))
        elif node.tag == "select":
            chosen = [o for o in node.select("option") if "selected" in o.attrs] or node.select("option")[:1]
            fields += [(name, o.get("value") or o.text()) for o in chosen]
        elif node.tag == "textarea":
            fields.append((name, node.text()))
    if button.get("name"):
        fields.append((button.get("name") or "", button.get("value") or ""))
    return form.get("action") or "", fields


async def submit(http: httpx.AsyncClient, button: Node, **changes: str) -> httpx.Response:
    """Press ``button`` (fields in ``changes`` replaced first)."""
    action, fields = form_of(button)
    fields = [(k, changes.get(k, v)) for k, v in fields]
    body = urlencode(fields)
    return await http.post(action, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})


def csrf_of(page: str) -> str:
    found = parse_html(page).select('input[name="csrf_token"]')
    assert found, "no CSRF token on the page"
    return found[0].get("value") or ""


@dataclass(frozen=True)
class Team:
    id: uuid.UUID
    name: str


async def make_team(db: asyncpg.Pool) -> Team:
    name = f"Maternité {uuid.uuid4().hex[:8]}"
    async with db.acquire() as conn:
        return Team(await teams.create_team(conn, name), name)


async def make_clinician(
    db: asyncpg.Pool, team: Team, *, unit: str = "mg/dL", language: str = "en", role: str = "diabetologist"
) -> str:
    email = f"dr.{uuid.uuid4().hex[:8]}@chu.example"
    async with db.acquire() as conn:
        await teams.create_clinician(
            conn,
            email=email,
            password=PASSWORD,
            team_id=team.id,
            role=role,
            display_name=f"Dr {email[3:9]}",
            language=language,
            display_unit=unit,
        )
    return email


async def make_patient(
    db: asyncpg.Pool,
    team: Team,
    name: str = "Camille D.",
    *,
    profile: str = "FR",
    treatment: str = "diet",
    time_zone: str = "Europe/Paris",
    due_in_days: int = 60,
    device: str = "meter",
) -> tuple[uuid.UUID, str]:
    async with db.acquire() as conn:
        patient_id = await patients.create_patient(
            conn,
            team_id=team.id,
            external_id=f"IPP-{uuid.uuid4().hex[:8]}",
            display_name=name,
            time_zone=time_zone,
            due_date=dt.date.today() + dt.timedelta(days=due_in_days),
            profile=profile,
            treatment=treatment,
        )
        new = await devices.add_device(conn, patient_id=patient_id, kind=device)
    return patient_id, new.device_id


async def add_readings(
    db: asyncpg.Pool,
    patient_id: uuid.UUID,
    device_id: str,
    readings: Sequence[tuple[dt.datetime, float, str, str | None]],
    kind: str = "smbg",
) -> list[int]:
    """Readings (time, mg/dL, context, meal) stored as the ingest stores them (test set-up, not the subject)."""
    rows = await db.fetch(
        "INSERT INTO readings (patient_id, device_id, kind, device_time, value_raw, unit_raw, measured_at,"
        " value_mgdl, context, meal, minutes_after_meal, source)"
        " SELECT $1, $2, $3, t, v, 'mg/dL', t, v, c, m, CASE WHEN m IS NULL THEN NULL ELSE 120 END, 'http'"
        " FROM unnest($4::timestamptz[], $5::float8[], $6::text[], $7::text[]) AS r(t, v, c, m) RETURNING id",
        patient_id,
        device_id,
        kind,
        [r[0] for r in readings],
        [r[1] for r in readings],
        [r[2] for r in readings],
        [r[3] for r in readings],
    )
    return [r["id"] for r in rows]


async def add_alert(
    db: asyncpg.Pool,
    patient_id: uuid.UUID,
    *,
    rule: str = "hypo_l2",
    severity: str = "urgent",
    opened_ago: dt.timedelta = dt.timedelta(hours=1),
    message_en: str = "Level 2 hypoglycaemia: 1 reading below 54 mg/dL, lowest 50 mg/dL. Rule hypo_l2.",
    message_fr: str = "Hypoglycémie de niveau 2 : 1 mesure sous 54 mg/dL, la plus basse 50 mg/dL. Règle hypo_l2.",
    evidence: dict[str, Any] | None = None,
    status: str = "open",
) -> int:
    alert_id: int = await db.fetchval(
        "INSERT INTO alerts (patient_id, rule, episode_key, severity, status, message, evidence, opened_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, now() - $8::interval) RETURNING id",
        patient_id,
        rule,
        f"t{uuid.uuid4().hex[:8]}",
        severity,
        status,
        json.loads(json.dumps({"en": message_en, "fr": message_fr})),
        evidence or {"reading_ids": [], "values_mgdl": [], "measured_at": []},
        opened_ago,
    )
    return alert_id


# --- tests of the helper ------------------------------------------------------------------------------------------


def test_selectors_find_by_tag_id_class_and_attribute() -> None:
    doc = parse_html(
        '<div id="a" class="x y"><p data-k="1">one <b>two</b></p><br><p class="y" data-k="2">three</p></div>'
    )
    assert [p.text() for p in doc.select("div p")] == ["one two", "three"]
    assert doc.one("#a").classes == {"x", "y"}
    assert doc.one("p.y").text() == "three"
    assert doc.one('[data-k="1"] b').text() == "two"
    assert doc.select("p[data-k^=2]")[0].text() == "three"


# --- charts ----------------------------------------------------------------------------------------------------------

PARIS = ZoneInfo("Europe/Paris")


def _fmt(unit: str = "mg/dL", lang: str = "en") -> Formatter:
    return Formatter(lang=lang, unit=unit, now=dt.datetime(2026, 3, 14, 12, tzinfo=dt.UTC))


def _entry(day: dt.date, hour: int, value: float, context: str = "fasting") -> G.Entry:
    targets = G.targets_for("FR", "diet", {})
    local = dt.datetime.combine(day, dt.time(hour), tzinfo=PARIS)
    meal = None if context == "fasting" else "lunch"
    return G.Entry(1, local, value, G.judge(targets, value, context, meal, None), (), context, meal, None)


def test_glucose_chart_draws_the_band_and_one_marker_shape_per_judgement() -> None:
    days = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(14)]
    meter = [_entry(days[0], 8, 90), _entry(days[1], 8, 101), _entry(days[2], 8, 60)]
    svg = charts.glucose_chart(
        fmt=_fmt(),
        zone=PARIS,
        days=days,
        meter=meter,
        cgm_t=np.zeros(0, dtype=np.int64),
        cgm_v=np.zeros(0),
        targets=G.targets_for("FR", "diet", {}),
        cgm=False,
    )
    doc = parse_html(str(svg))
    root = doc.one("svg")
    assert root.get("role") == "img" and root.get("aria-labelledby") == "glucose-chart-title glucose-chart-desc"
    assert "70 mg/dL" in doc.one("desc").text() and "120 mg/dL" in doc.one("desc").text()
    assert len(doc.select("rect.band")) == 1 and len(doc.select("line.fasting-line")) == 1
    assert len(doc.select("g.pt-in circle")) == 1  # in target: a circle
    assert len(doc.select("g.pt-above path")) == 1  # above: a triangle
    assert len(doc.select("g.pt-hypo path")) == 1  # hypo: a triangle pointing down
    titles = [t.text() for t in doc.select("g.pt title")]
    assert any("60 mg/dL" in t and "hypoglycaemia" in t for t in titles)
    assert len(doc.select("line.day")) == 14


def test_glucose_chart_of_a_sensor_keeps_the_low_of_each_quarter_hour() -> None:
    days = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(14)]
    start = int(dt.datetime.combine(days[0], dt.time(0), tzinfo=PARIS).timestamp())
    t = start + np.arange(0, 14 * 86400, 300, dtype=np.int64)
    v = np.full(len(t), 110.0)
    v[100] = 45.0
    svg = str(
        charts.glucose_chart(
            fmt=_fmt("mmol/L"),
            zone=PARIS,
            days=days,
            meter=[],
            cgm_t=t,
            cgm_v=v,
            targets=G.targets_for("FR", "diet", {}),
            cgm=True,
        )
    )
    doc = parse_html(svg)
    path = doc.one("path.cgm-line").get("d") or ""
    assert path.count("L") == 14 * 96 - 1  # one point per quarter hour, no gap
    low_y = charts.Frame().y(45.0)
    assert f" {low_y}" in path  # the 45 mg/dL reading is not averaged away
    assert "3,5" not in svg and "3.5 mmol/L" in doc.one("desc").text()  # band 63–140 in mmol/L, English


def test_agp_and_time_in_ranges_of_a_sensor() -> None:
    minutes = np.tile(np.arange(0, 1440, 5), 14).astype(np.int64)
    values = np.where(minutes < 360, 60.0, 120.0) + (np.arange(len(minutes)) % 7)
    profile = G.agp(values, minutes)
    assert profile.percentiles.shape == (96, 5)
    assert np.all(np.diff(profile.percentiles, axis=1) >= 0)  # 5 ≤ 25 ≤ 50 ≤ 75 ≤ 95
    doc = parse_html(str(charts.agp_chart(_fmt(), profile)))
    assert len(doc.select("polygon.agp-outer")) == 1 and len(doc.select("polygon.agp-iqr")) == 1
    assert len(doc.select("path.agp-median")) == 1
    tir = G.time_in_ranges(values, 14 * 86400)
    assert tir is not None
    assert round(tir.very_low + tir.low + tir.in_range + tir.high, 6) == 100.0
    assert tir.coverage == 100.0
    bar = parse_html(str(charts.tir_bar(_fmt("g/L", "fr"), tir)))
    labels = [t.text() for t in bar.select("rect title")]
    assert any(label.startswith("0,63 g/L à 1,40 g/L") for label in labels), labels
