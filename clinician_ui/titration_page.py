"""The team's basal titration protocol (diabetologists and administrators): the protocol in force with its line in
words, the default's citation, the form that changes it field by field, and the switch that turns suggestions off.

The protocol is the alerts domain's (``alerts.titration``: its checks, its table, its audit record
``titration.protocol``); this page only reads a form into a ``Protocol`` and words the refusals, each beside its
field, in the clinician's language. The one-line wording of a protocol (:func:`protocol_line`) is also the line a
dose review suggestion shows on the patient page."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from alerts import titration
from clinician_ui import sessions, web
from clinician_ui.admin import FormErrors
from clinician_ui.i18n import Formatter
from clinician_ui.sessions import Clinician
from telemon import teams
from telemon.patients import FieldError

router = APIRouter(include_in_schema=False)

ROLES = ("diabetologist", "admin")  # a titration protocol is a prescribing decision
OPTIONAL = ("step_units", "step_percent", "reduction_percent", "reduction_units")  # empty: not used
DAYS = ("window_days", "days_required")
FIELDS = (
    "step_units",
    "step_percent",
    "window_days",
    "days_required",
    "max_step_units",
    "reduction_percent",
    "reduction_units",
)


async def prescriber(who: Clinician = Depends(web.clinician)) -> Clinician:
    """The dependency of the page: diabetologists and administrators, else 403."""
    if who.role not in ROLES:
        raise web.PageError(403, "titration.forbidden")
    return who


def _units(value: float, fmt: Formatter) -> str:
    return fmt.num(value, 0 if float(value).is_integer() else 1)


def _percent(value: float, fmt: Formatter) -> str:
    return fmt.pct(value, 0 if float(value).is_integer() else 1)


def _step(units: Any, percent: Any, kind: str, fmt: Formatter) -> str:
    parts = []
    if isinstance(units, int | float) and not isinstance(units, bool):
        parts.append(fmt.t(f"titration.line.{kind}_units", units=_units(units, fmt)))
    if isinstance(percent, int | float) and not isinstance(percent, bool):
        parts.append(fmt.t(f"titration.line.{kind}_percent", percent=_percent(percent, fmt)))
    if len(parts) == 2:
        return fmt.t("titration.line.either", first=parts[0], second=parts[1])
    return parts[0] if parts else "—"


def protocol_line(protocol: Mapping[str, Any] | None, change: str, fmt: Formatter) -> str:
    """A protocol (``Protocol.as_json()``, as a dose review alert's ``protocol`` param holds it) in one line of the
    reader's language: the increase's rule, or the reduction's (``change``: ``increase`` | ``reduction``). A
    param missing falls back to the default's value, so that an older alert still reads."""
    given = {**titration.DEFAULT.as_json(), **(protocol or {})}
    cap = _units(float(given["max_step_units"]), fmt)
    if change == "reduction":
        step = _step(given["reduction_units"], given["reduction_percent"], "reduction", fmt)
        return fmt.t("titration.line.reduction", step=step, cap=cap)
    step = _step(given["step_units"], given["step_percent"], "step", fmt)
    return fmt.t(
        "titration.line.increase", step=step, required=given["days_required"], window=given["window_days"], cap=cap
    )


def protocol_of_form(form: Mapping[str, Any], errors: FormErrors, fmt: Formatter) -> titration.Protocol | None:
    """The protocol a submitted form asks for, before ``alerts.titration.check`` judges it; a value that is not a
    number is added to ``errors`` beside its field (None then). Numbers as a French or English clinician types
    them ("2,5" or "2.5")."""
    values: dict[str, Any] = {}
    for name in FIELDS:
        text = web.field(form, name).replace(",", ".").replace(" ", "").replace("\u202f", "")
        label = fmt.t(f"titration.field.{name}")
        if not text:
            values[name] = None
            if name not in OPTIONAL:
                errors.add(name, "titration.error.number", field=label)
            continue
        try:
            number = float(text)
        except ValueError:
            errors.add(name, "titration.error.number", field=label)
            continue
        if number != number or number in (float("inf"), float("-inf")):
            errors.add(name, "titration.error.number", field=label)
        elif name in DAYS:
            if not number.is_integer():
                errors.add(name, "titration.error.whole", field=label)
            else:
                values[name] = int(number)
        else:
            values[name] = number
    if errors:
        return None
    return titration.Protocol(**values, suggestions_enabled=web.field(form, "suggestions_enabled") == "on")


def form_values(protocol: titration.Protocol, fmt: Formatter) -> dict[str, str]:
    """The form filled with ``protocol``, in the clinician's decimal mark."""
    shown = protocol.as_json()
    values = {name: "" if shown[name] is None else _units(float(shown[name]), fmt) for name in FIELDS}
    values["suggestions_enabled"] = "on" if protocol.suggestions_enabled else ""
    return values


def refusal(refused: FieldError, errors: FormErrors, fmt: Formatter) -> None:
    """``alerts.titration.check``'s refusal beside its field, in the clinician's language."""
    bounds = {
        k: fmt.num(float(v), 0 if float(v).is_integer() else 1)
        for k, v in refused.params.items()
        if isinstance(v, int | float)
    }
    bounds.setdefault("low", "—")
    bounds.setdefault("high", "—")
    name = refused.field
    errors.add(name, f"titration.error.{name}", field=fmt.t(f"titration.field.{name}"), **bounds)


async def _teams(request: Request, who: Clinician) -> dict[uuid.UUID, str]:
    async with web.connection(request) as conn:
        return await teams.team_names(conn, who.team_ids)


def _team(text: str | None, who: Clinician) -> uuid.UUID:
    """The team asked for (one of the clinician's), or her first."""
    try:
        chosen = uuid.UUID(text or "")
    except ValueError:
        return who.team_ids[0]
    if chosen not in who.team_ids:
        raise web.PageError(404, "error.not_found")
    return chosen


async def _page(
    request: Request,
    who: Clinician,
    team_id: uuid.UUID,
    *,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    fmt = web.formatter(who)
    async with web.connection(request) as conn:
        protocol = (await titration.load(conn, [team_id]))[team_id]
    context: dict[str, Any] = {
        "teams": await _teams(request, who),
        "team_id": team_id,
        "protocol": protocol,
        "is_default": protocol == titration.DEFAULT,
        "lines": {c: protocol_line(protocol.as_json(), c, fmt) for c in ("increase", "reduction")},
        "default_lines": {c: protocol_line(titration.DEFAULT.as_json(), c, fmt) for c in ("increase", "reduction")},
        "default_source": titration.DEFAULT_SOURCE,
        "errors": errors or FormErrors(),
        "values": values or form_values(protocol, fmt),
        "fields": FIELDS,
    }
    return web.render(request, "titration.html", context, who=who, status_code=status_code)


@router.get("/team/titration")
async def titration_page(request: Request, who: Clinician = Depends(prescriber)) -> HTMLResponse:
    if not who.team_ids:
        raise web.PageError(404, "error.not_found")
    return await _page(request, who, _team(request.query_params.get("team"), who))


@router.post("/team/titration/{team_id}", response_model=None)
async def save_protocol(team_id: uuid.UUID, request: Request, who: Clinician = Depends(prescriber)) -> Response:
    form = await web.form_of(request, who)
    if team_id not in who.team_ids:
        raise web.PageError(404, "error.not_found")
    fmt = web.formatter(who)
    errors = FormErrors()
    values = {name: web.field(form, name) for name in (*FIELDS, "suggestions_enabled")}
    protocol = titration.DEFAULT if web.field(form, "restore") else protocol_of_form(form, errors, fmt)
    if protocol is not None:
        try:
            async with web.connection(request) as conn:
                await titration.save(conn, team_id, protocol, who.actor)
        except FieldError as refused:
            refusal(refused, errors, fmt)
    if errors:
        return await _page(request, who, team_id, errors=errors, values=values, status_code=422)
    await sessions.flash(web.pool(request), who, "titration.saved")
    return web.redirect(f"/team/titration?team={team_id}")
