"""FHIR R4 import of Observations, for hospitals (lab and ward readings): glucose, and the device contract's other
kinds — ketones (blood β-hydroxybutyrate 53060-9 or 104816-4 in mmol/L; urine strip 2514-8, a valueCodeableConcept
or valueString from negative to +++), body weight (29463-7 or 3141-9 in kg, g or [lb_av]) and blood pressure (panel
85354-9 or 55284-4 with the components systolic 8480-6 and diastolic 8462-4 in mm[Hg], heart rate 8867-4 in /min
optional) — stored as measurements (``vitals``). Insulin doses (MedicationAdministration) are not imported.

``POST /fhir/Observation`` takes one Observation; ``POST /fhir`` a Bundle of type ``batch`` or ``transaction``
whose entries POST Observations. Bodies are ``application/fhir+json`` or ``application/json``; the caller is a
hospital API key with the scope ``readings:write``. Every error of these routes, authentication included, is an
``OperationOutcome``.

Each Observation is translated once into one item of the device wire format (``observations``) and every entry
of a request goes to the ingest service in one call (``imports``: one transaction, source ``fhir``, the audit row
in it): validation, units, the pregnancy window and deduplication are the pipeline's, not redone here. A refused
Observation is recorded in ``ingest_rejections`` with its entry position as index (none for a single POST), its
reason naming the Observation's element. Readings are stored under one device per patient,
``fhir-<patient uuid hex>``, created on first import; it is deterministic so that a re-import deduplicates on
(patient, device, kind, device_time, value).

Answers:
- single POST: ``201 Created`` with the Observation echoed, its ``id`` being the stored reading's id (``m<id>`` for
  a measurement, as the read side names it), and a ``Location``; ``200 OK`` with the same for a reading already
  stored (like a conditional create that found its match); an OperationOutcome otherwise: 400 not an Observation,
  404 unknown patient (a patient of a care team the API key does not belong to is unknown to it, with the very same
  answer), 422 refused by the rules.
- ``batch``: a ``batch-response`` Bundle with one entry per input entry, in order, ``response.status`` being what
  a single POST of that entry would have answered, with ``response.outcome`` for refused entries. A bad entry
  never fails the good ones.
- ``transaction``: all or nothing, as FHIR requires. When every entry is acceptable they are stored together
  and a ``transaction-response`` Bundle comes back; otherwise nothing is stored, the refusals are recorded, and
  the answer is one OperationOutcome (400 if an entry is malformed, else 422) with an issue per refused entry.
  Hospitals that want partial success send a ``batch``.

Modules: ``routes`` (bodies and answers), ``imports``, ``observations`` (glucose), ``vitals`` (the other kinds),
``outcome`` (the refusals of a body or an entry; the OperationOutcome answers are the core's,
``telemon.fhir_json``), ``queries``.
"""

from __future__ import annotations

from ingest.fhir.routes import router
from telemon.fhir_json import unavailable

__all__ = ["router", "unavailable"]
