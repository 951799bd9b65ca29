"""A Nightscout-compatible upload API under ``/ns``, so that the CGM apps patients already use (xDrip+, Juggluco,
AndroidAPS, which upload to Nightscout) can send to telemon unchanged: the app's Nightscout URL is
``https://<telemon>/ns`` and its API secret is the device token.

Endpoints (Nightscout API v1). Every path answers the same with or without a trailing slash and with a ``.json``
suffix (``/entries``, ``/entries/``, ``/entries.json``): Nightscout's own clients write the slash, and an OkHttp
uploader does not follow a redirect on POST.

- ``POST /ns/api/v1/entries``: ``sgv`` (CGM, kind ``cgm``) and ``mbg`` (meter, kind ``smbg``) entries, in mg/dL.
  The document is kept beside the reading and answered as Nightscout does (``sgv`` as sent, ``direction``,
  ``noise``, ``filtered``, ``unfiltered``, ``rssi``, ``utcOffset`` of ``dateString``).
- ``POST /ns/api/v1/entries/preview``: the same checks and answer, nothing stored or recorded.
- ``GET /ns/api/v1/entries``, ``/entries/sgv``, ``/entries/mbg``, ``/entries/current``, ``/entries/<24 hex id>``:
  the patient's latest readings, with ``count`` and the ``find`` forms of ``date``, ``dateString``, ``sysTime``,
  ``type``, ``sgv``, ``mbg``, ``_id``.
- ``POST /ns/api/v1/treatments``: every treatment is kept (insulin, carbs, BG checks, notes, site changes …),
  normalised and deduplicated as Nightscout does; one carrying ``glucose`` is also a meter reading.
  ``GET /ns/api/v1/treatments`` reads them back.
- ``POST /ns/api/v1/devicestatus``: answered 200 and not kept.
- ``GET /ns/api/v1/status``: server status, readable without a secret as in Nightscout (it tells nothing about
  any patient), so that apps can check the URL before the secret is set.
- ``GET /ns/api/v1/verifyauth``: whether the credentials are valid, as apps check them when set up.

Authentication is Nightscout's (``auth``). Every upload is translated once into the device wire format — one item
per document, or the document's refusal (a Dexcom error code, an unknown entry type, a missing date) — and handed
to the ingest service as one submission, which validates it, stores it with the documents kept beside the readings
in one transaction, and records every refusal with the index of the document. The answer is Nightscout's: the
array of the documents as stored (just inserted or already there); refused documents are left out of it, and the
``X-Telemon-*`` headers carry the receipt (accepted, duplicates, rejected).

Modules: ``router`` (the routes' class and spellings, what every upload shares), ``auth``, ``entries``,
``treatments``, ``status``, ``documents`` (Nightscout's forms of times and numbers), ``markup`` (sanitising text),
``queries``.
"""

from __future__ import annotations

from ingest.nightscout import entries, status, treatments
from ingest.nightscout.router import router

__all__ = ["entries", "router", "status", "treatments"]
