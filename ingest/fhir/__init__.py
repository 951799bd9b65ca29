"""FHIR R4 import of glucose Observations, for hospitals (lab and ward readings).

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
- single POST: ``201 Created`` with the Observation echoed, its ``id`` being the stored reading's id, and a
  ``Location``; ``200 OK`` with the same for a reading already stored (like a conditional create that found its
  match); an OperationOutcome otherwise: 400 not an Observation, 404 unknown patient (a patient of a care team
  the API key does not belong to is unknown to it, with the very same answer), 422 refused by the rules.
- ``batch``: a ``batch-response`` Bundle with one entry per input entry, in order, ``response.status`` being what
  a single POST of that entry would have answered, with ``response.outcome`` for refused entries. A bad entry
  never fails the good ones.
- ``transaction``: all or nothing, as FHIR requires. When every entry is acceptable they are stored together
  and a ``transaction-response`` Bundle comes back; otherwise nothing is stored, the refusals are recorded, and
  the answer is one OperationOutcome (400 if an entry is malformed, else 422) with an issue per refused entry.
  Hospitals that want partial success send a ``batch``.

Modules: ``routes`` (bodies and answers), ``imports``, ``observations``, ``outcome`` (OperationOutcome and the
errors of these routes), ``queries``.
"""

from __future__ import annotations

from ingest.fhir.outcome import unavailable
from ingest.fhir.routes import router

__all__ = ["router", "unavailable"]
