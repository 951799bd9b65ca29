"""From a FHIR R4 Observation of ketones, body weight or blood pressure to one item of the device wire format
(pure), the other kinds of ``ingest.measurements``; and the element of the Observation each item field came from,
so that a refusal names the element the hospital sent. Validation (plausible ranges, the pregnancy window) and
deduplication are the pipeline's, as for glucose.

The codes are those of the FHIR vital-signs profiles (body weight, blood pressure panel with its systolic,
diastolic and heart-rate components) and of laboratory LOINC (ketones), as ``records.fhir_resources`` writes them
back: what telemon exports, it imports. Insulin doses (MedicationAdministration) are not imported.
"""

from __future__ import annotations

from typing import Any

from ingest.fhir.outcome import Refused
from ingest.readings import brief
from telemon.fhir_json import LOINC, UCUM

# LOINC codes by kind, with their LOINC long names.
BLOOD_KETONE_CODES = {
    "53060-9": "3-Hydroxybutyrate [Moles/volume] in Serum or Plasma",
    "104816-4": "Beta hydroxybutyrate [Moles/volume] in Blood",
}
URINE_KETONE_CODES = {"2514-8": "Ketones [Presence] in Urine by Test strip"}
WEIGHT_CODES = {"29463-7": "Body weight", "3141-9": "Body weight Measured"}
PRESSURE_CODES = {
    "85354-9": "Blood pressure panel with all children optional",
    "55284-4": "Blood pressure systolic and diastolic",
}
SYSTOLIC, DIASTOLIC, HEART_RATE = "8480-6", "8462-4", "8867-4"
MEASUREMENT_CODES = {**BLOOD_KETONE_CODES, **URINE_KETONE_CODES, **WEIGHT_CODES, **PRESSURE_CODES}
# Observations of one component alone: telemon stores a blood pressure as its pair, and a heart rate only with it.
COMPONENT_CODES = {SYSTOLIC: "systolic", DIASTOLIC: "diastolic", HEART_RATE: "heart rate"}

# UCUM units (case-sensitive; the case-insensitive forms and the usual unit texts are taken too) → the wire's.
WEIGHT_UNITS = {"kg": "kg", "g": "g", "[lb_av]": "lb", "lb": "lb", "lbs": "lb"}
PRESSURE_UNITS = {"mm[hg]": "mmHg", "mmhg": "mmHg"}
PULSE_UNITS = ("/min", "{beats}/min", "beats/min", "bpm", "{beat}/min")
KETONE_UNITS = {"mmol/l": "mmol/L"}

# A urine strip's reading, as the wire format says it (negative, trace, +, ++, +++), from the codes and words a
# laboratory sends: SNOMED CT qualifier values, LOINC answers (the "+ out of ++++" scale) and the
# words of the strips' colour charts (small, moderate, large). "++++" is the top of the scale, +++ for telemon.
SNOMED = "http://snomed.info/sct"
URINE_BY_CODE = {
    "260385009": "negative", "LA6577-6": "negative",
    "260405006": "trace", "LA11832-5": "trace",
    "260347006": "+", "LA11841-6": "+", "255507004": "+",
    "260348001": "++", "LA11842-4": "++", "255508009": "++",
    "260349009": "+++", "LA11843-2": "+++", "255509001": "+++",
    "260350009": "+++", "LA11844-0": "+++",
}  # fmt: skip
URINE_BY_TEXT = {
    "negative": "negative", "neg": "negative", "-": "negative", "nil": "negative", "absent": "negative",
    "not detected": "negative", "négatif": "negative", "negatif": "negative",
    "trace": "trace", "traces": "trace", "tr": "trace", "+/-": "trace", "±": "trace",
    "+": "+", "1+": "+", "small": "+", "(+)": "+",
    "++": "++", "2+": "++", "moderate": "++", "medium": "++", "(++)": "++",
    "+++": "+++", "3+": "+++", "large": "+++", "(+++)": "+++", "++++": "+++", "4+": "+++",
}  # fmt: skip


def measurement_codes(codes: list[str]) -> list[str]:
    return [c for c in codes if c in MEASUREMENT_CODES]


def refuse_component(codes: list[str]) -> None:
    """An Observation of a blood-pressure component alone is refused with what to send instead."""
    for code in codes:
        if code in COMPONENT_CODES:
            raise Refused(
                422,
                "not-supported",
                f"a {COMPONENT_CODES[code]} alone ({code}) is not stored: send a blood pressure panel (85354-9) whose"
                f" components are the systolic ({SYSTOLIC}), the diastolic ({DIASTOLIC}) and optionally the heart"
                f" rate ({HEART_RATE})",
                "Observation.code.coding",
            )


def to_measurement(observation: dict[str, Any], codes: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The wire-format item of an Observation whose codes are of ``MEASUREMENT_CODES`` (without its time, id and
    note, which every kind shares), and the element each of its fields came from."""
    code = codes[0]
    if code in BLOOD_KETONE_CODES:
        return _blood_ketone(observation)
    if code in URINE_KETONE_CODES:
        return _urine_ketone(observation)
    if code in WEIGHT_CODES:
        return _weight(observation)
    return _blood_pressure(observation)


def _quantity(
    holder: Any, where: str, units: dict[str, str] | tuple[str, ...], what: str
) -> tuple[Any, str, str | None]:
    """A valueQuantity's value and its unit as the wire format says it, and its comparator; ``where`` is the
    element holding the valueQuantity."""
    quantity = holder.get("valueQuantity") if isinstance(holder, dict) else None
    if not isinstance(quantity, dict):
        if isinstance(holder, dict) and holder.get("dataAbsentReason") is not None:
            raise Refused(422, "required", f"no value: {where} gives a dataAbsentReason", f"{where}.dataAbsentReason")
        raise Refused(422, "required", f"valueQuantity: required for {what}", f"{where}.valueQuantity")
    system, code = quantity.get("system"), quantity.get("code")
    if code is not None:
        if system is not None and system != UCUM:
            raise Refused(
                422, "code-invalid", f"{brief(system, 60)} is not UCUM ({UCUM})", f"{where}.valueQuantity.system"
            )
        unit_text, path = code, f"{where}.valueQuantity.code"
    else:
        unit_text, path = quantity.get("unit"), f"{where}.valueQuantity.unit"
    found = None
    if isinstance(unit_text, str):
        text = unit_text.strip()
        if isinstance(units, dict):
            found = units.get(text) or units.get(text.lower())
        elif text in units or text.lower() in units:
            found = text
    if found is None:
        expected = ", ".join(dict.fromkeys(units)) if isinstance(units, dict) else ", ".join(units)
        raise Refused(422, "code-invalid", f"{brief(unit_text, 20)} is not a unit of {what} (UCUM {expected})", path)
    if quantity.get("value") is None:
        raise Refused(422, "required", "valueQuantity.value: required", f"{where}.valueQuantity.value")
    comparator = quantity.get("comparator")
    if comparator is not None and comparator not in ("<", "<=", ">", ">="):
        raise Refused(
            422, "not-supported", f"comparator {brief(comparator, 10)}: expected <, <=, > or >=",
            f"{where}.valueQuantity.comparator",
        )  # fmt: skip
    return quantity["value"], found, comparator


def _blood_ketone(observation: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    value, unit, comparator = _quantity(observation, "Observation", KETONE_UNITS, "blood β-hydroxybutyrate")
    item: dict[str, Any] = {"kind": "ketone", "value": value, "unit": unit}
    if comparator is not None:  # a meter's "Hi" or a laboratory's "< 0.1": only a bound is known, and kept as said
        item["note"] = f"reported as {comparator} {value} {unit}"
    return item, {"value": "Observation.valueQuantity.value", "unit": "Observation.valueQuantity.code"}


def _urine_ketone(observation: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    concept = observation.get("valueCodeableConcept")
    if isinstance(concept, dict):
        codings = concept.get("coding")
        for coding in codings if isinstance(codings, list) else []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str) and coding["code"] in URINE_BY_CODE:
                return _urine(URINE_BY_CODE[coding["code"]]), {}
        texts = [concept.get("text")]
        texts += [c.get("display") for c in codings if isinstance(c, dict)] if isinstance(codings, list) else []
        for text in texts:
            if isinstance(text, str) and text.strip().lower() in URINE_BY_TEXT:
                return _urine(URINE_BY_TEXT[text.strip().lower()]), {}
        raise Refused(
            422, "code-invalid",
            f"urine ketones {brief(concept.get('text') or texts[-1], 30)}: expected a strip's reading (negative,"
            " trace, +, ++, +++; SNOMED CT or LOINC answer codes)",
            "Observation.valueCodeableConcept",
        )  # fmt: skip
    text = observation.get("valueString")
    if isinstance(text, str):
        if text.strip().lower() in URINE_BY_TEXT:
            return _urine(URINE_BY_TEXT[text.strip().lower()]), {}
        raise Refused(
            422, "code-invalid", f"urine ketones {brief(text, 30)}: expected negative, trace, +, ++ or +++",
            "Observation.valueString",
        )  # fmt: skip
    raise Refused(
        422, "required", "urine ketones (2514-8) are a strip's reading: valueCodeableConcept or valueString",
        "Observation.valueCodeableConcept",
    )  # fmt: skip


def _urine(reading: str) -> dict[str, Any]:
    return {"kind": "ketone", "urine": reading}


def _weight(observation: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    value, unit, comparator = _quantity(observation, "Observation", WEIGHT_UNITS, "body weight")
    if comparator is not None:
        raise Refused(
            422, "not-supported", f"comparator {comparator}: a body weight is a measured value",
            "Observation.valueQuantity.comparator",
        )  # fmt: skip
    item = {"kind": "weight", "value": value, "unit": unit}
    return item, {"value": "Observation.valueQuantity.value", "unit": "Observation.valueQuantity.code"}


def _blood_pressure(observation: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The panel's components: systolic and diastolic required, heart rate optional (each its LOINC code)."""
    components = observation.get("component")
    if not isinstance(components, list):
        raise Refused(
            422, "required", f"component: required, with the systolic ({SYSTOLIC}) and the diastolic ({DIASTOLIC})",
            "Observation.component",
        )  # fmt: skip
    item: dict[str, Any] = {"kind": "blood_pressure", "unit": "mmHg"}
    paths: dict[str, str] = {}
    for index, component in enumerate(components):
        code = component.get("code") if isinstance(component, dict) else None
        codings = code.get("coding") if isinstance(code, dict) else None
        found = [
            c.get("code") for c in (codings if isinstance(codings, list) else [])
            if isinstance(c, dict) and c.get("system") == LOINC
        ]  # fmt: skip
        where = f"Observation.component[{index}]"
        for wanted, name, units, what in (
            (SYSTOLIC, "systolic", PRESSURE_UNITS, "blood pressure"),
            (DIASTOLIC, "diastolic", PRESSURE_UNITS, "blood pressure"),
            (HEART_RATE, "pulse", PULSE_UNITS, "heart rate"),
        ):
            if wanted not in found:
                continue
            if name in item:
                raise Refused(422, "invalid", f"two components with the code {wanted}", f"{where}.code")
            value, _, comparator = _quantity(component, where, units, what)
            if comparator is not None:
                raise Refused(
                    422, "not-supported", f"comparator {comparator}: a blood pressure is a measured value",
                    f"{where}.valueQuantity.comparator",
                )  # fmt: skip
            item[name], paths[name] = value, f"{where}.valueQuantity.value"
    for wanted, name in ((SYSTOLIC, "systolic"), (DIASTOLIC, "diastolic")):
        if name not in item:
            raise Refused(
                422, "required", f"the {name} component ({wanted}) is required", "Observation.component"
            )  # fmt: skip
    return item, paths
