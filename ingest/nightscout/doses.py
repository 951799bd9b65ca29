"""The insulin doses in Nightscout treatments, as items of the device wire format (``kind`` insulin), so that they
are validated, deduplicated and stored like every other dose (``ingest.measurements``).

What the uploaders send (their own code is the reference):

- AndroidAPS (NSClient, ``Bolus.toJson``): ``{"eventType": "Meal Bolus", "insulin": 4.5, "created_at", "date",
  "type": "NORMAL", "isValid": true, "isSMB": false, "pumpId", "pumpType", "pumpSerial", "identifier"}``; an SMB
  is a "Correction Bolus" with ``"type": "SMB"``; ``"type": "PRIMING"`` fills the cannula and reaches no patient;
  ``"isValid": false`` is a bolus the user deleted. AndroidAPS calls every normal bolus a "Meal Bolus", carbs or
  not (the carbs travel in a treatment of their own).
- xDrip+ (``NightscoutUploader.populateV1APITreatmentEntry``): ``{"eventType": "<none>" or a bolus type,
  "enteredBy", "uuid", "_id" (from the uuid), "insulin": total units, "carbs", "timestamp", "created_at",
  "insulinInjections": "[{\\"insulin\\": \\"NovoRapid\\", \\"units\\": 4.0}]"}``: the injections' breakdown by
  product, a JSON string, when several insulins are set up.
- Nightscout's careportal: "Bolus", "Correction Bolus", "Meal Bolus", "Snack Bolus" with ``insulin``; a
  "Combo Bolus" has ``insulin`` for its immediate part and ``enteredinsulin`` for the whole bolus (immediate and
  extended), which is the dose.

What a dose is here:
- the ``insulin`` of a treatment (after Nightscout's own normalisation: numeric text is a number, 0 and empty
  are no dose), or each injection of xDrip+'s breakdown, product named;
- not a pump's basal: "Temp Basal" treatments carry a rate, not a dose, and are kept as treatments only;
- not a priming, not a deleted bolus.

Its insulin is "rapid" when the treatment names no product (a bolus); a product is classed by its name when the
name is a known one, else kept as the product alone. Its slot (the meal it covers) is said only when the
treatment shows it is for a meal: it carries carbs (not a snack) — then the patient's local meal window gives the
meal (``telemon.meal_context``); a bolus without carbs, a correction or a snack has no slot. A treatment whose
dose cannot be read, or whose units no pen or pump gives (negative, above 160 U), is refused with its reason, in
the treatment's own field names.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any
from zoneinfo import ZoneInfo

from ingest.readings import Rejection, brief
from telemon.meal_context import window_of

# Treatments that change a pump's basal rate: a rate over a duration, not a dose (GDM patients rarely use pumps).
BASAL_RATE_EVENTS = frozenset({"Temp Basal", "Temp Basal Start", "Temp Basal End"})
# AndroidAPS's bolus types that reach no patient: priming fills the infusion set's cannula.
NOT_GIVEN = frozenset({"PRIMING"})
# The meal windows of ``telemon.meal_context.window_of`` (1 breakfast, 2 lunch, 3 dinner; night and bedtime have
# no meal).
MEAL_OF_WINDOW = {1: "breakfast", 2: "lunch", 3: "dinner"}
# Product names, lower case, by the class of insulin (premixed first: "Humalog Mix 25" is not Humalog). Names sold
# in Europe and North America, with their international non-proprietary names; a name none of them is part of is
# stored as a product only.
PRODUCT_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("premixed", ("mix", "comb", "profil", "humulin m3", "humulin 70/30", "novolin 70/30")),
    ("basal", (
        "nph", "isophane", "insulatard", "humulin n", "humulin i", "novolin n", "insuman basal", "huminsulin basal",
        "levemir", "detemir", "lantus", "glargin", "abasaglar", "basaglar", "semglee", "toujeo", "tresiba",
        "degludec",
    )),
    ("rapid", (
        "novorapid", "novolog", "aspart", "fiasp", "humalog", "lispro", "admelog", "lyumjev", "apidra", "glulisine",
        "actrapid", "humulin r", "humulin s", "novolin r", "insuman rapid", "umuline rapide", "regular",
    )),
)  # fmt: skip
ID_LIMIT = 128  # the wire format's limit of an item's id
NOTE_LIMIT = 1000

# The treatment's field each wire field comes from, for a refusal told in the uploader's terms.
ORIGINS = {"units": "insulin", "measured_at": "created_at", "note": "notes", "id": "identifier"}


def insulin_class(product: str) -> str | None:
    """The class (basal, rapid, premixed) of a product by its name, or None for a name telemon does not know."""
    name = product.lower()
    for insulin, names in PRODUCT_CLASSES:
        if any(known in name for known in names):
            return insulin
    return None


def dose_items(
    treatment: dict[str, Any], sent: dict[str, Any], zone: ZoneInfo
) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """The wire-format insulin items of one normalised treatment (``sent``: the document as received), each with the
    treatment field each item field came from; none when the treatment is no dose. ``Rejection`` when it says it
    is one and cannot be read."""
    event, kind = treatment.get("eventType"), treatment.get("type")
    if isinstance(event, str) and event in BASAL_RATE_EVENTS:
        return []
    if treatment.get("isValid") is False or (isinstance(kind, str) and kind in NOT_GIVEN):
        return []
    units, origins = _units(treatment, sent)
    if units is None:
        return []
    base: dict[str, Any] = {"kind": "insulin", "measured_at": treatment["created_at"]}
    identity = treatment.get("identifier") or treatment.get("_id")
    if isinstance(identity, str) and 0 < len(identity) <= ID_LIMIT:
        base["id"] = identity
    notes = sent.get("notes")
    if treatment.get("notes") and isinstance(notes, str) and notes.strip():
        base["note"] = notes.strip()[:NOTE_LIMIT]
    slot = _slot(treatment, sent, zone)
    injections = _injections(sent.get("insulinInjections"))
    if injections:
        items = []
        for product, injected in injections:
            item = {**base, "units": injected, "product": product}
            insulin = insulin_class(product)
            if insulin is not None:
                item["insulin"] = insulin
            if slot is not None and insulin == "rapid":
                item["slot"] = slot
            items.append((item, {**ORIGINS, "units": "insulinInjections", "product": "insulinInjections"}))
        return items
    item = {**base, "units": units, "insulin": "rapid"}
    if slot is not None:
        item["slot"] = slot
    return [(item, origins)]


def _units(treatment: dict[str, Any], sent: dict[str, Any]) -> tuple[float | None, dict[str, str]]:
    """The dose's units and where they came from: a Combo Bolus's whole bolus, else the treatment's insulin."""
    if treatment.get("eventType") == "Combo Bolus" and sent.get("enteredinsulin") not in (None, ""):
        entered = _number(sent["enteredinsulin"], "enteredinsulin")
        if entered:
            return entered, {**ORIGINS, "units": "enteredinsulin"}
    insulin = treatment.get("insulin")
    if insulin is None:
        raw = sent.get("insulin")
        if raw is not None and not (isinstance(raw, str) and not raw.strip()):
            _number(raw, "insulin")  # Nightscout dropped it as NaN: say why it is no dose rather than lose it
        return None, ORIGINS
    return float(insulin), ORIGINS


def _number(value: Any, where: str) -> float:
    """A number of units as JavaScript's ``Number()`` reads it, or the refusal saying it is none."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Rejection(f"{where}: {brief(value)} is not a number of units")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        raise Rejection(f"{where}: {brief(value)} is not a number of units") from None
    if not math.isfinite(number):
        raise Rejection(f"{where}: {brief(value)} is not a number of units")
    return number


def _injections(value: Any) -> list[tuple[str, float]]:
    """xDrip+'s breakdown of a treatment's insulin by product: a JSON array (sent as a string) of
    ``{"insulin": name, "units": n}``. An empty or unreadable breakdown is none: the treatment's total is the dose."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return []
    if not isinstance(value, list):
        return []
    found = []
    for injection in value:
        if not isinstance(injection, dict):
            return []
        name, units = injection.get("insulin"), injection.get("units")
        if not isinstance(name, str) or not name.strip() or isinstance(units, bool):
            return []
        if not isinstance(units, int | float):
            return []
        if units == 0:
            continue  # an insulin set up but not injected this time
        try:
            found.append((name.strip(), float(units)))
        except OverflowError:  # an integer too long for a float: no breakdown telemon can read
            return []
    return found


def _slot(treatment: dict[str, Any], sent: dict[str, Any], zone: ZoneInfo) -> str | None:
    """The meal a dose covers, when the treatment shows one: it carries carbs (moved by a preBolus or not) and is
    not a snack's; the meal is the local meal window of the dose's time."""
    if treatment.get("eventType") == "Snack Bolus":
        return None
    carbs = sent.get("carbs")
    try:
        has_carbs = carbs is not None and not isinstance(carbs, bool) and float(carbs) > 0
    except (TypeError, ValueError, OverflowError):
        has_carbs = False
    if not has_carbs:
        return None
    local = dt.datetime.fromisoformat(treatment["created_at"]).astimezone(zone)
    return MEAL_OF_WINDOW.get(window_of(local.hour * 60 + local.minute))
