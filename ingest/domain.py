"""What ingest contributes to the service: every transport's routes (device HTTP, Nightscout, FHIR), and FHIR's
own form of the 503 of a database outage. The MQTT consumer is started by the composition root for the ``mqtt``
role."""

from __future__ import annotations

from ingest import fhir
from ingest.routes import include_routes
from telemon.domain import Domain

DOMAIN = Domain("ingest", include_routes=include_routes, unavailable=(("/fhir", fhir.unavailable),))
