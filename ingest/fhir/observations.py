"""From a FHIR R4 Observation to one item of the device wire format (pure): the subject, the LOINC code, the
status, the quantity in a UCUM unit, the time; and the element of the Observation each item field came from, so
that a refusal names the element the hospital sent. Glucose here; ketones, body weight and blood pressure in
``ingest.fhir.vitals`` (``to_item`` takes either)."""

from __future__ import annotations

import uuid
from typing import Any

from ingest.fhir.outcome import Refused
from ingest.fhir.vitals import MEASUREMENT_CODES, measurement_codes, refuse_component, to_measurement
from ingest.readings import brief, text_fault
from telemon.fhir_json import LOINC, UCUM
from telemon.units import GL, MGDL, MMOLL

# Glucose LOINC codes imported, with their LOINC long names: blood, capillary blood by glucometer, and CGM sensor
# readings (the HL7 CGM IG's codes); and the laboratory ones (serum or plasma, what a hospital lab reports,
# including a fasting sample), for hospital imports.
GLUCOSE_CODES: dict[str, str] = {
    "2339-0": "Glucose [Mass/volume] in Blood",
    "15074-8": "Glucose [Moles/volume] in Blood",
    "41653-7": "Glucose [Mass/volume] in Capillary blood by Glucometer",
    "14743-9": "Glucose [Moles/volume] in Capillary blood by Glucometer",
    "99504-3": "Glucose [Mass/volume] in Interstitial fluid (CGM sensor reading, HL7 CGM IG)",
    "105272-9": "Glucose [Moles/volume] in Interstitial fluid (CGM sensor reading, HL7 CGM IG)",
    "2345-7": "Glucose [Mass/volume] in Serum or Plasma",
    "14749-6": "Glucose [Moles/volume] in Serum or Plasma",
    "1558-6": "Fasting glucose [Mass/volume] in Serum or Plasma",
    "14771-0": "Fasting glucose [Moles/volume] in Serum or Plasma",
}
CGM_CODES = frozenset({"99504-3", "105272-9"})  # stored as kind cgm; every other code as smbg
FASTING_CODES = frozenset({"1558-6", "14771-0"})  # context fasting; otherwise the pipeline infers the context

# Observation.status values whose result is a reading (FHIR R4 ObservationStatus).
STATUSES = ("final", "amended", "corrected", "preliminary")
WITHDRAWN = {
    "entered-in-error": "the result was entered in error",
    "cancelled": "the observation was cancelled",
}
# UCUM codes of the glucose units telemon stores (UCUM is case-sensitive; its case-insensitive forms are taken
# too). g/L is French laboratory practice (targets written as 0.95 g/L).
UCUM_UNITS = {unit.lower(): unit for unit in (MGDL, MMOLL, GL)}
# valueQuantity.comparator: a value the meter or the lab could only bound is a LO / HI reading.
COMPARATOR_FLAGS = {"<": "lo", "<=": "lo", ">": "hi", ">=": "hi"}


Subject = tuple[str, Any]  # ("id", uuid.UUID) or ("external_id", str)


def check_observation(resource: Any) -> dict[str, Any]:
    if not isinstance(resource, dict):
        raise Refused(400, "structure", f"expected a resource (a JSON object), got {type(resource).__name__}")
    kind = resource.get("resourceType")
    if kind != "Observation":
        raise Refused(
            400,
            "not-supported",
            f"resourceType {brief(kind, 40)}: only Observation resources are imported",
            "resourceType",
        )
    return resource


def subject_of(observation: dict[str, Any]) -> Subject:
    """Whose reading: ``subject.reference`` ``Patient/<telemon id>`` (absolute or relative), else the value of
    ``subject.identifier`` matched against the patients' external id (the hospital number; its system is not
    compared: telemon keeps none)."""
    subject = observation.get("subject")
    if not isinstance(subject, dict):
        raise Refused(
            422,
            "required",
            "subject: required, Patient/<telemon id> or an identifier with the patient's hospital number",
            "Observation.subject",
        )
    identifier = subject.get("identifier")
    value = identifier.get("value") if isinstance(identifier, dict) else None
    external_id = value.strip() if isinstance(value, str) and value.strip() else None
    fault = text_fault(external_id) if external_id is not None else None
    if fault:
        raise Refused(422, "invalid", f"the identifier {fault}", "Observation.subject.identifier.value")
    has_identifier = external_id is not None
    reference = subject.get("reference")
    if isinstance(reference, str) and reference.strip():
        parts = reference.strip().split("/")
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        if len(parts) >= 2 and parts[-2] == "Patient":
            try:
                return ("id", uuid.UUID(parts[-1]))
            except ValueError:
                if not has_identifier:
                    raise Refused(
                        404,
                        "not-found",
                        f"{reference[:80]!r} is not a telemon patient id; give"
                        " Patient/<telemon id> or subject.identifier with the hospital number",
                        "Observation.subject.reference",
                    ) from None
        elif not has_identifier:
            raise Refused(
                422, "invalid", f"{reference[:80]!r} does not refer to a Patient", "Observation.subject.reference"
            )
    if external_id is not None:
        return ("external_id", external_id)
    raise Refused(
        422,
        "required",
        "subject: give reference Patient/<telemon id> or identifier.value with the patient's hospital number",
        "Observation.subject",
    )


def loinc_codes(observation: dict[str, Any]) -> list[Any]:
    """The LOINC codes of ``Observation.code`` (as sent: not all are strings)."""
    code = observation.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    if not isinstance(codings, list):
        raise Refused(422, "required", "code.coding: required, with a LOINC code", "Observation.code")
    return [c.get("code") for c in codings if isinstance(c, dict) and c.get("system") == LOINC]


def glucose_codes(observation: dict[str, Any]) -> list[str]:
    found = loinc_codes(observation)
    glucose = [c for c in found if isinstance(c, str) and c in GLUCOSE_CODES]
    if not glucose:
        refuse_component([c for c in found if isinstance(c, str)])
        given = ", ".join(brief(c, 20) for c in found) or "none"
        raise Refused(
            422,
            "code-invalid",
            f"no LOINC code telemon imports (LOINC codes given: {given}); expected glucose"
            f" ({', '.join(GLUCOSE_CODES)}), or ketones, body weight or blood pressure"
            f" ({', '.join(MEASUREMENT_CODES)})",
            "Observation.code.coding",
        )
    return glucose


def to_item(observation: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """One Observation as a wire-format item of its kind (a glucose reading, ketones, a weight, a blood pressure),
    and the Observation element each of its fields came from."""
    measured = measurement_codes([c for c in loinc_codes(observation) if isinstance(c, str)])
    if not measured or any(isinstance(c, str) and c in GLUCOSE_CODES for c in loinc_codes(observation)):
        return to_reading(observation)
    check_status(observation)
    item, paths = to_measurement(observation, measured)
    item["measured_at"], paths["measured_at"] = _effective(observation)
    _identity_and_note(observation, item, paths)
    return item, paths


def check_status(observation: dict[str, Any]) -> None:
    """Only a result stands for a measurement: final, amended, corrected or preliminary."""
    status = observation.get("status")
    if status in STATUSES:
        return
    if isinstance(status, str) and status in WITHDRAWN:
        raise Refused(
            422,
            "business-rule",
            f"status {status}: {WITHDRAWN[status]}, so it is not a measurement",
            "Observation.status",
        )
    raise Refused(
        422,
        "value" if status is not None else "required",
        f"status {brief(status, 30)}: expected one of {', '.join(STATUSES)}",
        "Observation.status",
    )


def _quantity(observation: dict[str, Any]) -> tuple[Any, str, list[str], dict[str, str]]:
    """value, UCUM unit, flags, and the element each wire field came from."""
    quantity = observation.get("valueQuantity")
    if not isinstance(quantity, dict):
        if observation.get("dataAbsentReason") is not None:
            raise Refused(
                422, "required", "no value: the Observation gives a dataAbsentReason", "Observation.dataAbsentReason"
            )
        other = next((key for key in observation if key.startswith("value")), None)
        if other:
            raise Refused(
                422, "not-supported", f"{other}: a glucose value must be a valueQuantity", f"Observation.{other}"
            )
        raise Refused(422, "required", "valueQuantity: required", "Observation.valueQuantity")
    paths = {"value": "Observation.valueQuantity.value"}
    system = quantity.get("system")
    code = quantity.get("code")
    if code is not None:
        if system is not None and system != UCUM:
            raise Refused(
                422, "code-invalid", f"{brief(system, 60)} is not UCUM ({UCUM})", "Observation.valueQuantity.system"
            )
        unit_text, paths["unit"] = code, "Observation.valueQuantity.code"
    else:
        unit_text, paths["unit"] = quantity.get("unit"), "Observation.valueQuantity.unit"
    unit = UCUM_UNITS.get(unit_text.strip().lower()) if isinstance(unit_text, str) else None
    if unit is None:
        raise Refused(
            422,
            "code-invalid",
            f"{brief(unit_text, 20)} is not a glucose unit telemon takes (UCUM {', '.join(UCUM_UNITS.values())})",
            paths["unit"],
        )
    flags = []
    comparator = quantity.get("comparator")
    if comparator is not None:
        paths["flags"] = "Observation.valueQuantity.comparator"
        if not isinstance(comparator, str) or comparator not in COMPARATOR_FLAGS:
            raise Refused(
                422,
                "not-supported",
                f"comparator {brief(comparator, 10)}: expected one of {', '.join(COMPARATOR_FLAGS)}",
                paths["flags"],
            )
        flags.append(COMPARATOR_FLAGS[comparator])
    if quantity.get("value") is None:
        raise Refused(422, "required", "valueQuantity.value: required", paths["value"])
    return quantity["value"], unit, flags, paths


def _effective(observation: dict[str, Any]) -> tuple[Any, str]:
    period = observation.get("effectivePeriod")
    start = period.get("start") if isinstance(period, dict) else None
    for value, path in (
        (observation.get("effectiveDateTime"), "Observation.effectiveDateTime"),
        (observation.get("effectiveInstant"), "Observation.effectiveInstant"),
        (start, "Observation.effectivePeriod.start"),
    ):
        if value is None:
            continue
        if isinstance(value, str) and "T" not in value:
            raise Refused(422, "value", f"{value[:40]!r} has no time of day; a measurement needs one", path)
        return value, path
    raise Refused(
        422,
        "required",
        "effectiveDateTime, effectiveInstant or effectivePeriod.start: required",
        "Observation.effective",
    )


def to_reading(observation: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """One Observation as a wire-format reading, and the Observation element each of its fields came from (to
    name the element when the pipeline refuses a field)."""
    codes = glucose_codes(observation)
    check_status(observation)
    value, unit, flags, paths = _quantity(observation)
    measured_at, paths["measured_at"] = _effective(observation)
    item: dict[str, Any] = {
        "measured_at": measured_at,
        "value": value,
        "unit": unit,
        "kind": "cgm" if any(c in CGM_CODES for c in codes) else "smbg",
    }
    if any(c in FASTING_CODES for c in codes):
        item["context"] = "fasting"
    if flags:
        item["flags"] = flags
    _identity_and_note(observation, item, paths)
    return item, paths


def _identity_and_note(observation: dict[str, Any], item: dict[str, Any], paths: dict[str, str]) -> None:
    """The item's id (``Observation.id``, else the first identifier's value) and note (the Observation's notes,
    after any note of the translation)."""
    if observation.get("id") is not None:
        item["id"], paths["id"] = observation["id"], "Observation.id"
    else:
        identifiers = observation.get("identifier")
        first = identifiers[0] if isinstance(identifiers, list) and identifiers else None
        if isinstance(first, dict) and first.get("value") is not None:
            item["id"], paths["id"] = first["value"], "Observation.identifier[0].value"
    notes = observation.get("note")
    if isinstance(notes, list):
        texts = [n["text"] for n in notes if isinstance(n, dict) and isinstance(n.get("text"), str) and n["text"]]
        if texts:
            item["note"] = "\n".join([item["note"], *texts] if item.get("note") else texts)
            paths["note"] = "Observation.note"


def pipeline_refusal(reason: str, paths: dict[str, str]) -> Refused:
    """The ingest pipeline's refusal of an Observation's reading, as told by the service in the Observation's terms
    (``"Observation.valueQuantity.value: ..."``: it names the element each wire field came from, ``paths``): that
    element is the issue's expression."""
    element, sep, rest = reason.partition(": ")
    if sep and element in paths.values():
        return Refused(422, "invalid", rest, element)
    return Refused(422, "invalid", reason)
