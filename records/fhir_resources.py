"""telemon's records as FHIR R4 resources (pure: rows in, JSON out): the Patient, an Observation for each reading
and measurement, with the LOINC code of its kind and a UCUM unit, and the DiagnosticReport that carries a PDF
report to the hospital record.

Codes, with their sources:
- glucose by meter: LOINC 41653-7 (mass/volume) / 14743-9 (moles/volume), "Glucose in Capillary blood by
  Glucometer"; by a CGM sensor: LOINC 99504-3 / 105272-9 and the HL7 CGM IG's sensor-reading profiles (HL7 FHIR
  IG "Continuous Glucose Monitoring", hl7.fhir.uv.cgm 1.0.0, STU 1). Both are category ``laboratory``, as the IG's
  examples are.
- weight: LOINC 29463-7 "Body weight" (kg), and blood pressure: the panel 85354-9 with systolic 8480-6 and
  diastolic 8462-4 (mm[Hg]), heart rate 8867-4 (/min): category ``vital-signs``, as the FHIR R4 vital signs
  profiles require.
- ketones: β-hydroxybutyrate LOINC 53060-9 (mmol/L; the code laboratories and ketone meters' exports use, its
  system being serum or plasma), urine ketones by test strip LOINC 2514-8 (an ordinal result as text): category
  ``laboratory``. The import (``ingest.fhir.vitals``) reads these codes back.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from typing import Any

import asyncpg

from telemon.fhir_json import LOINC, UCUM
from telemon.units import MGDL, MMOLL, MMOLL_TO_MGDL, canonical_unit

CGM_IG = "http://hl7.org/fhir/uv/cgm"  # canonical of the HL7 CGM IG
CGM_IG_VERSION = "1.0.0"  # STU 1, the version whose profiles and codes these resources follow
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
VITAL_SIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"

Row = Mapping[str, Any] | asyncpg.Record  # a query's row, or the same as a dict

FHIR_UNITS = (MGDL, MMOLL)  # the glucose units of the LOINC pairs (mass / moles)


def profile(name: str) -> str:
    """The canonical URL of one of the HL7 CGM IG's profiles."""
    return f"{CGM_IG}/StructureDefinition/{name}"


# (kind, unit) → LOINC code, its long name, and the IG profile it follows (CGM readings only).
GLUCOSE_CODES: dict[tuple[str, str], tuple[str, str, str | None]] = {
    ("smbg", MGDL): ("41653-7", "Glucose [Mass/volume] in Capillary blood by Glucometer", None),
    ("smbg", MMOLL): ("14743-9", "Glucose [Moles/volume] in Capillary blood by Glucometer", None),
    ("cgm", MGDL): (
        "99504-3",
        "Glucose [Mass/volume] in Interstitial fluid",
        profile("cgm-sensor-reading-mass-per-volume"),
    ),
    ("cgm", MMOLL): (
        "105272-9",
        "Glucose [Moles/volume] in Interstitial fluid",
        profile("cgm-sensor-reading-moles-per-volume"),
    ),
}
WEIGHT = ("29463-7", "Body weight")
BLOOD_PRESSURE = ("85354-9", "Blood pressure panel with all children optional")
SYSTOLIC = ("8480-6", "Systolic blood pressure")
DIASTOLIC = ("8462-4", "Diastolic blood pressure")
HEART_RATE = ("8867-4", "Heart rate")
BLOOD_KETONES = ("53060-9", "3-Hydroxybutyrate [Moles/volume] in Serum or Plasma")
URINE_KETONES = ("2514-8", "Ketones [Presence] in Urine by Test strip")
CGM_SUMMARY = ("107931-8", "Continuous glucose monitoring summary panel - Reporting Period")

# Every LOINC code a search may name, and the stored kind it selects (the unit of a glucose code is the unit the
# answer is in when ``unit`` is not given).
SEARCH_CODES: dict[str, str] = {code: kind for (kind, _), (code, _, _) in GLUCOSE_CODES.items()} | {
    WEIGHT[0]: "weight",
    BLOOD_PRESSURE[0]: "blood_pressure",
    BLOOD_KETONES[0]: "ketone",
    URINE_KETONES[0]: "ketone",
}
CODE_UNITS = {code: unit for (_, unit), (code, _, _) in GLUCOSE_CODES.items()}
KINDS = ("smbg", "cgm", "ketone", "weight", "blood_pressure")
CATEGORIES = {"laboratory": ("smbg", "cgm", "ketone"), "vital-signs": ("weight", "blood_pressure")}
# Meter flags as the value's comparator (the import reads them back the same way).
COMPARATORS = {"lo": "<", "hi": ">"}


def instant(value: dt.datetime) -> str:
    """A FHIR instant in UTC (``2026-11-01T06:00:00Z``), to the second unless the time has a fraction."""
    utc = value.astimezone(dt.UTC)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds").replace("+00:00", "Z")


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    found = {"system": system, "code": code}
    if display:
        found["display"] = display
    return found


def concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [coding(system, code, display)], "text": display}


def category(code: str) -> list[dict[str, Any]]:
    return [{"coding": [coding(CATEGORY, code, "Laboratory" if code == "laboratory" else "Vital Signs")]}]


def quantity(value: float, unit: str, code: str | None = None) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code or unit}


def glucose_value(value_mgdl: float, value_raw: float | None, unit_raw: str | None, unit: str) -> float:
    """A glucose value in ``unit``: as the device sent it when it sent that unit (nothing lost to a conversion),
    else converted from mg/dL (mmol/L to 2 decimals, mg/dL to 1)."""
    if value_raw is not None and unit_raw is not None and canonical_unit(unit_raw) == unit:
        return value_raw
    if unit == MMOLL:
        return round(value_mgdl / MMOLL_TO_MGDL, 2)
    return round(value_mgdl, 1)


def patient_reference(patient_id: Any) -> dict[str, Any]:
    return {"reference": f"Patient/{patient_id}"}


def patient_resource(row: Row) -> dict[str, Any]:
    """The Patient: telemon's id, the hospital number (its ``external_id``; telemon keeps no identifier system, so
    the identifier carries the type MR instead), the name the team enrolled her under, and whether she is still
    followed (an archived patient is ``active: false``)."""
    return {
        "resourceType": "Patient",
        "id": str(row["id"]),
        "meta": {"lastUpdated": instant(row["updated_at"])},
        "identifier": [
            {
                "use": "usual",
                "type": concept(IDENTIFIER_TYPE, "MR", "Medical record number"),
                "value": row["external_id"],
            }
        ],
        "active": row["archived_at"] is None,
        "name": [{"text": row["display_name"]}],
    }


def device_reference(row: Row, device_system: str) -> dict[str, Any]:
    """The device that measured: a logical reference by its telemon device id (telemon serves no Device resource;
    a device id may hold ``_``, which a FHIR id may not)."""
    found: dict[str, Any] = {"identifier": {"system": device_system, "value": row["device_id"]}}
    label = row.get("device_label") or row.get("device_kind")
    if label:
        found["display"] = label
    return found


def observation(row: Row, patient_id: Any, unit: str, device_system: str) -> dict[str, Any]:
    """One stored reading (src 0: glucose; the Observation's id is the reading's, as the import's ``Location``
    gives it) or measurement (src 1: id ``m<id>``) as an Observation."""
    if row["src"] == 0:
        found = _glucose(row, unit)
        found["id"] = str(row["id"])
    else:
        found = _measurement(row)
        found["id"] = f"m{row['id']}"
    found["subject"] = patient_reference(patient_id)
    found["effectiveDateTime"] = instant(row["measured_at"])
    found["issued"] = instant(row["received_at"])
    found["device"] = device_reference(row, device_system)
    if row["note"]:
        found["note"] = [{"text": row["note"]}]
    return {"resourceType": "Observation", **{k: found[k] for k in _ORDER if k in found}}


_ORDER = (
    "id",
    "meta",
    "status",
    "category",
    "code",
    "subject",
    "effectiveDateTime",
    "issued",
    "valueQuantity",
    "valueCodeableConcept",
    "device",
    "note",
    "component",
)


def _glucose(row: Row, unit: str) -> dict[str, Any]:
    code, display, profile = GLUCOSE_CODES[(row["kind"], unit)]
    value = quantity(glucose_value(row["value_mgdl"], row["value_raw"], row["unit_raw"], unit), unit)
    for flag in row["flags"] or ():
        if flag in COMPARATORS:
            value = {"comparator": COMPARATORS[flag], **value}  # the meter's LO / HI: only a bound is known
    found: dict[str, Any] = {
        "status": "final",
        "category": category("laboratory"),
        "code": concept(LOINC, code, display),
        "valueQuantity": value,
    }
    if profile:
        found["meta"] = {"profile": [profile]}
    return found


def _measurement(row: Row) -> dict[str, Any]:
    kind = row["kind"]
    found: dict[str, Any] = {"status": "final"}
    if kind == "weight":
        found |= {
            "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/bodyweight"]},
            "category": category("vital-signs"),
            "code": concept(LOINC, *WEIGHT),
            "valueQuantity": quantity(round(row["value"], 2), "kg"),
        }
    elif kind == "blood_pressure":
        components = [
            {"code": concept(LOINC, *SYSTOLIC), "valueQuantity": quantity(row["systolic"], "mmHg", "mm[Hg]")},
            {"code": concept(LOINC, *DIASTOLIC), "valueQuantity": quantity(row["diastolic"], "mmHg", "mm[Hg]")},
        ]
        if row["pulse"] is not None:
            components.append({"code": concept(LOINC, *HEART_RATE), "valueQuantity": quantity(row["pulse"], "/min")})
        found |= {
            "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/bp"]},
            "category": category("vital-signs"),
            "code": concept(LOINC, *BLOOD_PRESSURE),
            "component": components,
        }
    elif row["urine"] is not None:
        found |= {
            "category": category("laboratory"),
            "code": concept(LOINC, *URINE_KETONES),
            "valueCodeableConcept": {"text": row["urine"]},
        }
    else:
        found |= {
            "category": category("laboratory"),
            "code": concept(LOINC, *BLOOD_KETONES),
            "valueQuantity": quantity(row["value"], "mmol/L"),
        }
    return found


def diagnostic_report(
    *,
    patient_id: Any,
    start: str,
    end: str,
    issued: dt.datetime,
    pdf: bytes,
    title: str,
    results: list[dict[str, Any]] | None = None,
    language: str | None = None,
    cgm: bool = True,
) -> dict[str, Any]:
    """A PDF report (``pdf``) of the period [``start``, ``end``] (dates YYYY-MM-DD, or instants) as a DiagnosticReport
    with the PDF in ``presentedForm`` (base64). With ``cgm`` (a sensor patient's report), the HL7 CGM IG's "CGM
    Summary PDF Report" (LOINC 107931-8), ``results`` being references to the CGM Summary Observation when it is
    sent with it; otherwise a report of self-monitored glucose, which has no LOINC code of its own: the code is text."""
    form: dict[str, Any] = {
        "contentType": "application/pdf",
        "data": base64.b64encode(pdf).decode("ascii"),
        "title": title,
        "creation": instant(issued),
    }
    if language:
        form["language"] = language
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "category": [{"coding": [coding(DIAGNOSTIC_SERVICE, "LAB", "Laboratory")]}],
        "code": concept(LOINC, *CGM_SUMMARY) if cgm else {"text": "Glucose self-monitoring report (pregnancy)"},
        "subject": patient_reference(patient_id),
        "effectivePeriod": {"start": start, "end": end},
        "issued": instant(issued),
        "presentedForm": [form],
    }
    if cgm:
        report = {"resourceType": "DiagnosticReport", "meta": {"profile": [profile("cgm-summary-pdf")]}, **report}
    if results:
        report["result"] = results
    return report
