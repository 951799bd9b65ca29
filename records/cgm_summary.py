"""The HL7 CGM IG's summary of a period of sensor readings (hl7.fhir.uv.cgm 1.0.0, STU 1): the "CGM Summary"
Observation (LOINC 107931-8) and its members — mean glucose, times in ranges, GMI, CV, days of wear, sensor active
percentage — as one FHIR Bundle (pure: figures in, JSON out).

The figures are the dashboard's, computed by the one implementation (``clinician_ui.glycaemia.time_in_ranges``)
over the same readings, so that what the hospital receives is what the team saw. The ranges are pregnancy's
(Battelino T et al., Clinical targets for CGM data interpretation: recommendations from the international consensus
on time in range, Diabetes Care 2019;42:1593): target 63–140 mg/dL, low 54–62, very low < 54, high 141–250 and very
high > 250 mg/dL; the IG's time-in-ranges components carry these bands in their text, since the IG leaves the
target range to the care setting and a reader must not take them for the usual 70–180 mg/dL.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from clinician_ui.glycaemia import CGM_HIGH, CGM_LOW, CGM_VERY_HIGH, CGM_VERY_LOW, SUFFICIENT_DAYS, TimeInRanges
from records.fhir_resources import (
    CGM_SUMMARY,
    category,
    concept,
    instant,
    patient_reference,
    profile,
    quantity,
)
from telemon.fhir_json import LOINC
from telemon.units import MGDL, MMOLL, MMOLL_TO_MGDL

# (profile id, LOINC code, name) of each member: the IG's profiles, codes and their names as the IG gives them.
MEAN_MASS = (
    "cgm-summary-mean-glucose-mass-per-volume",
    "97507-8",
    "Glucose [Mass/volume] in Serum or Plasma by Continuous glucose monitoring",
)
MEAN_MOLES = (
    "cgm-summary-mean-glucose-moles-per-volume",
    "105273-7",
    "Glucose [Moles/volume] in Capillary blood by Continuous glucose monitoring",
)
TIMES_IN_RANGES = ("cgm-summary-times-in-ranges", "106793-3", "Continuous glucose monitoring time in ranges panel")
GMI = ("cgm-summary-gmi", "97506-0", "Glucose management indicator by Continuous glucose monitoring")
CV = (
    "cgm-summary-coefficient-of-variation",
    "104638-2",
    "Coefficient of variation of glucose by Continuous glucose monitoring",
)
DAYS_OF_WEAR = ("cgm-summary-days-of-wear", "104636-6", "Continuous glucose monitoring duration of use")
SENSOR_ACTIVE = (
    "cgm-summary-sensor-active-percentage",
    "104637-4",
    "Continuous glucose monitoring sensor wear time active",
)
# The IG's five time-in-range components (slice, LOINC code), with the pregnancy band each counts.
_V54, _V63, _V140, _V250 = (f"{v:g}" for v in (CGM_VERY_LOW, CGM_LOW, CGM_HIGH, CGM_VERY_HIGH))
RANGE_COMPONENTS = (
    ("timeInVeryLow", "104642-4", f"Time in very low range, < {_V54} mg/dL"),
    ("timeInLow", "104641-6", f"Time in low range, {_V54}–{int(CGM_LOW) - 1} mg/dL"),
    ("timeInTarget", "97510-2", f"Time in target range for pregnancy, {_V63}–{_V140} mg/dL"),
    ("timeInHigh", "104640-8", f"Time in high range, {int(CGM_HIGH) + 1}–{_V250} mg/dL"),
    ("timeInVeryHigh", "104639-0", f"Time in very high range, > {_V250} mg/dL"),
)
SOURCE = (
    "Ranges and goals for pregnancy: Battelino T et al., international consensus on time in range, Diabetes Care"
    " 2019;42:1593 — target 63–140 mg/dL (3.5–7.8 mmol/L) > 70 % of the time, below 63 mg/dL < 4 %, below 54 mg/dL"
    " < 1 %, above 140 mg/dL < 25 %; CV ≤ 36 %; judged on 14 days with ≥ 70 % sensor data. GMI (%) = 3.31 +"
    " 0.02392 × mean mg/dL (Bergenstal 2018)."
)


def _percent(value: float) -> dict[str, Any]:
    return quantity(round(value, 2), "%")  # the IG: percent of time "with at least two decimal places"


def summary_bundle(
    *,
    patient_id: uuid.UUID,
    start: str,
    end: str,
    figures: TimeInRanges,
    days_of_wear: int,
    unit: str,
    now: dt.datetime,
    submission: bool = False,
) -> dict[str, Any]:
    """The summary and its members as a ``collection`` Bundle, members referenced by their ``urn:uuid`` full URLs;
    with ``submission``, the same resources as the IG's "CGM Data Submission Bundle" (a ``transaction`` whose entries
    POST each Observation), the input of ``$submit-cgm-bundle`` on a receiving EHR."""
    period = {"start": start, "end": end}

    def member(which: tuple[str, str, str], **value: Any) -> dict[str, Any]:
        name, code, display = which
        return {
            "resourceType": "Observation",
            "id": str(uuid.uuid4()),
            "meta": {"profile": [profile(name)]},
            "status": "final",
            "category": category("laboratory"),
            "code": concept(LOINC, code, display),
            "subject": patient_reference(patient_id),
            "effectivePeriod": period,
            **value,
        }

    if unit == MMOLL:
        mean = member(MEAN_MOLES, valueQuantity=quantity(round(figures.mean / MMOLL_TO_MGDL, 2), MMOLL))
    else:
        mean = member(MEAN_MASS, valueQuantity=quantity(round(figures.mean, 1), MGDL))
    shares = (
        figures.very_low,
        figures.low,
        figures.in_range,
        figures.high - figures.very_high,
        figures.very_high,
    )
    ranges = member(
        TIMES_IN_RANGES,
        note=[{"text": SOURCE}],
        component=[
            {"code": {"coding": [{"system": LOINC, "code": code}], "text": text}, "valueQuantity": _percent(share)}
            for (_, code, text), share in zip(RANGE_COMPONENTS, shares, strict=True)
        ],
    )
    members = [
        mean,
        ranges,
        member(GMI, valueQuantity=_percent(figures.gmi)),
        member(CV, valueQuantity=_percent(figures.cv)),
        member(DAYS_OF_WEAR, valueQuantity=quantity(days_of_wear, "days", "d")),
        member(SENSOR_ACTIVE, valueQuantity=_percent(figures.coverage)),
    ]
    notes = [{"text": f"{figures.n} sensor readings. {SOURCE}"}]
    if not figures.sufficient:
        notes.append(
            {
                "text": f"Insufficient data: {figures.wear_14d:.0f} % sensor wear over {SUFFICIENT_DAYS} days; the"
                f" consensus judges time in ranges on {SUFFICIENT_DAYS} days with at least 70 % of the readings."
            }
        )
    summary = {
        "resourceType": "Observation",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [profile("cgm-summary")]},
        "status": "final",
        "category": category("laboratory"),
        "code": concept(LOINC, *CGM_SUMMARY),
        "subject": patient_reference(patient_id),
        "effectivePeriod": period,
        "issued": instant(now),
        "hasMember": [{"reference": f"urn:uuid:{m['id']}"} for m in members],
        "note": notes,
    }
    entries = [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in (summary, *members)]
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "collection",
        "timestamp": instant(now),
        "entry": entries,
    }
    if submission:
        bundle["meta"] = {"profile": [profile("cgm-data-submission-bundle")]}
        bundle["type"] = "transaction"
        for entry in entries:
            entry["request"] = {"method": "POST", "url": "Observation"}
    return bundle
