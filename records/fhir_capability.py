"""``GET /fhir/metadata``: the CapabilityStatement of telemon's FHIR server — what a hospital's engine may read and
search (Patient, Observation), what it may import (``POST /fhir/Observation``, ``POST /fhir`` batch or
transaction), the CGM summary, and how it authenticates. Written by hand from the routes it describes; the tests
call every interaction it lists."""

from __future__ import annotations

import datetime as dt
from typing import Any

from records.fhir_resources import GLUCOSE_CODES, profile

SOFTWARE_VERSION = "0.1.0"  # pyproject.toml
PUBLISHED = dt.date(2026, 12, 4)  # when this statement last changed

OBSERVATION_SEARCH = (
    ("patient", "reference", "Required: Patient/<telemon id> (or the bare id); another care team's patient is 404."),
    ("subject", "reference", "The same as patient."),
    (
        "code",
        "token",
        "LOINC codes, comma-separated (OR): glucose 41653-7 / 14743-9 (meter), 99504-3 / 105272-9 (CGM);"
        " 29463-7 weight; 85354-9 blood pressure; 53060-9 / 2514-8 ketones. A moles code without unit= answers"
        " in mmol/L.",
    ),
    ("category", "token", "laboratory (glucose, ketones) or vital-signs (weight, blood pressure)."),
    (
        "date",
        "date",
        "effective time, repeatable, with the prefixes eq, ge, gt, le, lt; a date is the patient's local day"
        " (from her local midnight), a dateTime needs its offset.",
    ),
    ("_count", "number", "Observations per page, 1–1000 (default 100)."),
)


def capability_statement(base: str) -> dict[str, Any]:
    """The statement for the server at ``base`` (``https://…/fhir``)."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": PUBLISHED.isoformat(),
        "publisher": "telemon",
        "kind": "instance",
        "software": {"name": "telemon", "version": SOFTWARE_VERSION},
        "implementation": {
            "description": "telemon: telemonitoring of gestational diabetes (glucose meters and CGM)",
            "url": base,
        },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Every request but this one needs a hospital API key of a care team (Authorization: Bearer <key>"
                    " or X-API-Key): readings:read to read or search Observations and to get a CGM summary,"
                    " patients:read for Patient, readings:write to import. A key sees the patients of its care"
                    " teams only: another team's patient is answered 404 like a missing one. Every read of patient"
                    " data is audited. Errors are OperationOutcome resources. The CGM summary of a period (HL7 CGM"
                    " IG 1.0.0 summary Observation, LOINC 107931-8, and its members, pregnancy ranges 63–140 mg/dL)"
                    " is GET /api/v1/patients/{id}/cgm-summary?from=&to= (a collection Bundle;"
                    " &bundle=transaction gives the IG's CGM Data Submission Bundle, the input of"
                    " $submit-cgm-bundle)."
                ),
                "security": {
                    "cors": False,
                    "description": "Hospital API keys with scopes, bound to care teams (telemon create-api-key).",
                },
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {
                                "name": "identifier",
                                "type": "token",
                                "documentation": "The hospital number (system|value or value; telemon keeps no"
                                " identifier system, so only the value is compared).",
                            },
                            {"name": "_id", "type": "token", "documentation": "telemon's patient id."},
                        ],
                    },
                    {
                        "type": "Observation",
                        "supportedProfile": [
                            *(p for (_, _, p) in GLUCOSE_CODES.values() if p),
                            "http://hl7.org/fhir/StructureDefinition/bodyweight",
                            "http://hl7.org/fhir/StructureDefinition/bp",
                            *(
                                profile(name)
                                for name in (
                                    "cgm-summary",
                                    "cgm-summary-mean-glucose-mass-per-volume",
                                    "cgm-summary-mean-glucose-moles-per-volume",
                                    "cgm-summary-times-in-ranges",
                                    "cgm-summary-gmi",
                                    "cgm-summary-coefficient-of-variation",
                                    "cgm-summary-days-of-wear",
                                    "cgm-summary-sensor-active-percentage",
                                )
                            ),
                        ],
                        "documentation": (
                            "Search: a searchset Bundle with total and self/next/previous links (keyset paging: a"
                            " page never loses or repeats an Observation while readings arrive). Create: one"
                            " glucose Observation (LOINC 2339-0, 15074-8, 41653-7, 14743-9, 99504-3, 105272-9,"
                            " 2345-7, 14749-6, 1558-6, 14771-0; mg/dL, mmol/L or g/L) for Patient/<id> or a"
                            " subject identifier holding the hospital number; 201 created, 200 already stored"
                            " (deduplicated on what the sender said)."
                        ),
                        "interaction": [{"code": "search-type"}, {"code": "create"}],
                        "searchParam": [
                            {"name": name, "type": kind, "documentation": text}
                            for name, kind, text in OBSERVATION_SEARCH
                        ],
                    },
                    {
                        "type": "DiagnosticReport",
                        "supportedProfile": [profile("cgm-summary-pdf")],
                        "documentation": (
                            "The patient report of a period as a PDF in presentedForm (patients:read): one"
                            " DiagnosticReport per search, made when asked for (default: the last 14 days)."
                        ),
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [
                            {"name": "patient", "type": "reference", "documentation": "Required: Patient/<id>."},
                            {
                                "name": "date",
                                "type": "date",
                                "documentation": "The report's period: ge/eq the first day, lt the day after the last,"
                                " le the last (the patient's local days).",
                            },
                        ],
                    },
                ],
                "interaction": [
                    {
                        "code": "batch",
                        "documentation": "POST /fhir: a batch Bundle of Observation creates; a bad entry never"
                        " fails the others.",
                    },
                    {
                        "code": "transaction",
                        "documentation": "POST /fhir: a transaction Bundle of Observation creates, all or nothing.",
                    },
                ],
            }
        ],
    }
