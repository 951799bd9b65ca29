"""The FHIR resources telemon builds, without the database: glucose values in the reader's unit, and the
DiagnosticReport that carries a PDF report to the hospital record (the HL7 CGM IG's CGM Summary PDF Report)."""

from __future__ import annotations

import base64
import datetime as dt
import uuid

from records.fhir_resources import diagnostic_report, glucose_value, instant
from telemon.units import MGDL, MMOLL, MMOLL_TO_MGDL


def test_a_glucose_value_is_what_the_device_sent_when_it_sent_that_unit() -> None:
    stored = 5.3 * MMOLL_TO_MGDL
    assert glucose_value(stored, 5.3, "mmol/l", MMOLL) == 5.3  # not 5.2999… from the mg/dL
    assert glucose_value(stored, 5.3, "mmol/L", MGDL) == 95.5
    assert glucose_value(120.0, 1.2, "g/L", MMOLL) == round(120 / MMOLL_TO_MGDL, 2)
    assert glucose_value(95.0, 95.0, "mg/dL", MGDL) == 95.0


def test_instants_are_utc_with_z() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    assert instant(dt.datetime(2026, 11, 1, 7, 0, tzinfo=paris)) == "2026-11-01T06:00:00Z"
    assert instant(dt.datetime(2026, 11, 1, 6, 0, 0, 500, tzinfo=dt.UTC)) == "2026-11-01T06:00:00.000500Z"


def test_the_pdf_report_as_a_diagnostic_report() -> None:
    patient_id = uuid.uuid4()
    pdf = b"%PDF-1.7\n...%%EOF"
    issued = dt.datetime(2026, 11, 15, 14, 30, tzinfo=dt.UTC)
    report = diagnostic_report(
        patient_id=patient_id,
        start="2026-11-01",
        end="2026-11-14",
        issued=issued,
        pdf=pdf,
        title="Glucose report",
        results=[{"reference": "urn:uuid:0f8e5c3e-0000-4000-8000-000000000000"}],
        language="fr",
    )
    assert report["resourceType"] == "DiagnosticReport" and report["status"] == "final"
    assert report["meta"]["profile"] == ["http://hl7.org/fhir/uv/cgm/StructureDefinition/cgm-summary-pdf"]
    assert report["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "107931-8",
        "display": "Continuous glucose monitoring summary panel - Reporting Period",
    }
    assert report["category"][0]["coding"][0]["code"] == "LAB"
    assert report["subject"] == {"reference": f"Patient/{patient_id}"}
    assert report["effectivePeriod"] == {"start": "2026-11-01", "end": "2026-11-14"}
    assert report["issued"] == "2026-11-15T14:30:00Z"
    [form] = report["presentedForm"]
    assert form["contentType"] == "application/pdf" and base64.b64decode(form["data"]) == pdf
    assert form["language"] == "fr" and form["title"] == "Glucose report"
    assert report["result"] == [{"reference": "urn:uuid:0f8e5c3e-0000-4000-8000-000000000000"}]

    meter = diagnostic_report(patient_id=patient_id, start="2026-11-01", end="2026-11-14", issued=issued, pdf=pdf,
                              title="Glucose report", cgm=False)  # fmt: skip
    assert "meta" not in meter and "coding" not in meter["code"] and meter["code"]["text"]
    assert "result" not in meter
