"""The insulin doses of Nightscout treatments (``ingest.nightscout.doses``), without the database: what is a dose,
its class and slot, and that whatever a treatment holds it gives items or a refusal, never an exception."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.nightscout.doses import dose_items, insulin_class
from ingest.readings import Rejection

PARIS = ZoneInfo("Europe/Paris")
AT = "2026-11-22T07:40:00.000Z"  # 08:40 in Paris: the breakfast window


def items(treatment: dict[str, Any], sent: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [item for item, _ in dose_items({"created_at": AT, **treatment}, sent or treatment, PARIS)]


@pytest.mark.parametrize(
    ("product", "insulin"),
    [
        ("NovoRapid", "rapid"), ("Humalog", "rapid"), ("Fiasp", "rapid"), ("Lyumjev", "rapid"),
        ("Humalog Mix25", "premixed"), ("NovoMix 30", "premixed"), ("Insulatard", "basal"), ("Levemir", "basal"),
        ("Lantus", "basal"), ("Abasaglar", "basal"), ("Toujeo", "basal"), ("Tresiba", "basal"),
        ("Humulin N", "basal"), ("Umuline NPH", "basal"), ("MyPen", None),
    ],
)  # fmt: skip
def test_products_are_classed_by_their_name(product: str, insulin: str | None) -> None:
    assert insulin_class(product) == insulin


def test_what_is_no_dose() -> None:
    assert items({"eventType": "Temp Basal", "rate": 0.4, "absolute": 0.4, "duration": 30}) == []
    assert items({"eventType": "Temp Basal", "insulin": 0.2}) == []  # whatever it carries, a rate is no dose
    assert items({"eventType": "Meal Bolus", "insulin": 0.7, "type": "PRIMING"}) == []
    assert items({"eventType": "Meal Bolus", "insulin": 4, "isValid": False}) == []
    assert items({"eventType": "Note", "notes": "pen changed"}) == []
    assert items({"eventType": "Note"}, {"eventType": "Note", "insulin": ""}) == []


def test_a_slot_only_when_the_treatment_carries_the_meal() -> None:
    [with_carbs] = items({"eventType": "Meal Bolus", "insulin": 5, "carbs": 45})
    [without] = items({"eventType": "Meal Bolus", "insulin": 5})
    [snack] = items({"eventType": "Snack Bolus", "insulin": 1, "carbs": 15})
    [night] = items({"eventType": "Meal Bolus", "insulin": 2, "carbs": 20, "created_at": "2026-11-22T02:00:00.000Z"})
    assert (with_carbs["slot"], with_carbs["insulin"]) == ("breakfast", "rapid")
    assert "slot" not in without and "slot" not in snack and "slot" not in night


def test_unreadable_units_are_refused_in_the_treatments_terms() -> None:
    with pytest.raises(Rejection, match="insulin: 'two' is not a number of units"):
        items({"eventType": "Bolus"}, {"eventType": "Bolus", "insulin": "two"})
    with pytest.raises(Rejection, match="enteredinsulin: 'x' is not a number of units"):
        items({"eventType": "Combo Bolus", "insulin": 2, "enteredinsulin": "x"})


JSONISH = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6),
        st.sampled_from([10**400, "NovoRapid", "Levemir", '[{"insulin":"NovoRapid","units":1e999}]',
                         '[{"insulin":"X","units":' + "9" * 400 + "}]", "[[[[", "Temp Basal", "PRIMING"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)  # fmt: skip
FIELDS = ["eventType", "insulin", "enteredinsulin", "carbs", "type", "isValid", "insulinInjections", "identifier",
          "_id", "notes"]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(treatment=st.dictionaries(st.sampled_from(FIELDS), JSONISH, max_size=5))
def test_whatever_a_treatment_holds_it_is_items_or_a_refusal(treatment: dict[str, Any]) -> None:
    normalised = {**treatment, "created_at": AT}
    insulin = treatment.get("insulin")
    if not isinstance(insulin, int | float) or isinstance(insulin, bool) or insulin != insulin or insulin == 0:
        normalised.pop("insulin", None)  # Nightscout's normalisation keeps only a number
    elif isinstance(insulin, int) and insulin.bit_length() > 1000:
        normalised.pop("insulin")
    try:
        found = dose_items(normalised, treatment, PARIS)
    except Rejection as exc:
        assert str(exc)
        return
    for item, origins in found:
        assert item["kind"] == "insulin" and isinstance(item["units"], float)
        assert set(origins) >= {"units", "measured_at"}
        assert dt.datetime.fromisoformat(item["measured_at"])
