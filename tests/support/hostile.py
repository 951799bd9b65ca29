"""A fixed corpus of hostile HTTP requests, and how to count the rejections an answer reports.

Used by the memory soak test and by ``bench.hostile``: both send the same requests, in rounds, to a served
process. Each request is what an attacker or a broken uploader sends to one endpoint: bodies near and above the
size limit, gzip bombs, nesting thousands deep, numbers beyond any range, NUL characters and lone surrogates,
batches of thousands of bad items, Nightscout and FHIR bodies of the wrong shape, bad cursors and dates on the
read endpoints. The bodies are built once (the large ones take a fraction of a second) and reused: the server
must not remember them, so sending the same bytes again is as hostile as sending new ones.

``light`` requests are small (most of a round); ``heavy`` ones carry megabytes or thousands of items and are
mixed in one every ``heavy_every`` requests (``schedule``), so that a round stresses memory without filling the
rejections table with millions of rows.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

READINGS = "readings"  # POST /api/v1/readings (device token)
NIGHTSCOUT = "nightscout"  # POST /ns/api/v1/entries|treatments (api-secret)
FHIR_OBSERVATION = "fhir_observation"  # POST /fhir/Observation (API key)
FHIR_BUNDLE = "fhir_bundle"  # POST /fhir (API key)
READ = "read"  # no ingest: read endpoints and alert actions


@dataclass(frozen=True)
class Credentials:
    """Who the requests speak as: one device of one patient, and an API key holding every scope they need."""

    patient_id: uuid.UUID
    device_token: str
    api_key: str

    @property
    def ns_secret(self) -> str:
        """What a Nightscout uploader sends in ``api-secret``: the SHA-1 hex of the token."""
        return hashlib.sha1(self.device_token.encode()).hexdigest()  # noqa: S324 - Nightscout's own scheme


@dataclass(frozen=True)
class Hostile:
    name: str
    kind: str  # READINGS, NIGHTSCOUT, FHIR_OBSERVATION, FHIR_BUNDLE or READ
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Corpus:
    light: list[Hostile]
    heavy: list[Hostile]

    def schedule(self, count: int, heavy_every: int, start: int = 0) -> Iterator[Hostile]:
        """``count`` requests: the light ones in turn, with a heavy one (in turn) every ``heavy_every``.
        ``start`` continues the cycle of an earlier round."""
        for number in range(start, start + count):
            if heavy_every and number % heavy_every == heavy_every - 1:
                yield self.heavy[(number // heavy_every) % len(self.heavy)]
            else:
                yield self.light[number % len(self.light)]


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _cursor(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


BAD_ITEMS: tuple[str, ...] = (
    '{"value":"NaN","unit":"mg/dL","measured_at":"2026-01-01T00:00:00Z"}',
    '{"value":1e400,"unit":"mg/dL","measured_at":"2026-01-01T00:00:00Z"}',
    '{"value":' + "9" * 400 + ',"unit":"mg/dL","measured_at":"2026-01-01T00:00:00Z"}',
    '{"value":-Infinity,"unit":"mg/dL","measured_at":"2026-01-01T00:00:00Z"}',
    '{"value":100,"unit":"mg/dL","measured_at":"0001-01-01T00:00:00+14:00"}',
    '{"value":100,"unit":"mg/dL","measured_at":"9999-12-31T23:59:59-14:00"}',
    '{"value":100,"unit":"mg/dL","measured_at":"2026-01-01T00:00:00Z","id":"a\\u0000b"}',
    '{"value":100,"unit":"mg/dL","measured_at":"2026-01-01T00:00:00Z","note":"\\ud800"}',
    '{"value":100,"unit":"\\ud800","measured_at":"2026-01-01T00:00:00Z"}',
    '{"value":100,"unit":"mg/dL","measured_at":"\\udfff"}',
    '{"value":100,"unit":"furlongs","measured_at":"2026-01-01T00:00:00Z"}',
    '"\\ud800"',
    "null",
    "[]",
    '{"value":{"$gt":0},"unit":"mg/dL","measured_at":"2026-01-01T00:00:00Z"}',
)


def _bad_batch(items: int) -> bytes:
    return ('{"readings":[' + ",".join(BAD_ITEMS[i % len(BAD_ITEMS)] for i in range(items)) + "]}").encode()


def build(creds: Credentials, *, max_body_bytes: int, max_batch_readings: int) -> Corpus:
    """The corpus for one patient's device and one API key, sized for the server's limits."""
    device = {"Authorization": f"Bearer {creds.device_token}", "Content-Type": "application/json"}
    gz = {**device, "Content-Encoding": "gzip"}
    ns = {"api-secret": creds.ns_secret, "Content-Type": "application/json"}
    fhir = {"Authorization": f"Bearer {creds.api_key}", "Content-Type": "application/fhir+json"}
    key = {"Authorization": f"Bearer {creds.api_key}"}
    readings_path = f"/api/v1/patients/{creds.patient_id}/readings"
    now = "2026-01-01T00:00:00Z"

    def post(name: str, kind: str, path: str, headers: dict[str, str], body: bytes) -> Hostile:
        return Hostile(name, kind, "POST", path, headers, body)

    def device_post(name: str, body: bytes, headers: dict[str, str] = device) -> Hostile:
        return post(name, READINGS, "/api/v1/readings", headers, body)

    def observation(**changes: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
            "subject": {"reference": f"Patient/{creds.patient_id}"},
            "effectiveDateTime": now,
            "valueQuantity": {"value": 100, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
        }
        base.update(changes)
        return base

    bad_observations = [
        observation(code={"coding": [{"system": "http://loinc.org", "code": ["2339-0"]}]}),
        observation(code={"coding": [{"system": "http://loinc.org", "code": {"$ne": 1}}]}),
        observation(valueQuantity={"value": "1e400", "unit": "mg/dL"}),
        observation(effectiveDateTime="0001-01-01T00:00:00+14:00"),
        observation(subject={"reference": "Patient/\u0000"}),
        observation(subject="\ud800"),
    ]

    light = [
        device_post("readings: bad items", _bad_batch(len(BAD_ITEMS))),
        device_post("readings: not JSON", b'{"readings":[{"value":'),
        device_post("readings: lone surrogate payload", b'"\\ud800"'),
        device_post("readings: NUL payload", b'{"readings":"\\u0000"}'),
        device_post("readings: nesting 100,000 deep", _nested(100_000).encode()),
        device_post("readings: item nested 2,000 deep", b'{"readings":[' + _nested(2000).encode() + b"]}"),
        device_post("readings: 400-digit device_time", _json({"device_time": "9" * 400, "readings": []})),
        device_post(
            "readings: device clock at year 1",
            b'{"device_time":"0001-01-01T00:00:00+14:00","readings":'
            b'[{"value":100,"unit":"mg/dL","measured_at":"9999-12-31T23:59:59-14:00"}]}',
        ),
        device_post("readings: invalid gzip", b"\x1f\x8b\x08\x00garbage", gz),
        device_post("readings: bad encoding", b"\xff\xfe{\x00", device),
        post("nightscout: -Infinity sgv", NIGHTSCOUT, "/ns/api/v1/entries", ns,
             b'[{"type":"sgv","sgv":-Infinity,"date":1767225600000},{"type":"sgv","sgv":NaN,"date":1}]'),
        post("nightscout: 400-digit date", NIGHTSCOUT, "/ns/api/v1/entries", ns,
             b'[{"type":"sgv","sgv":120,"date":' + b"9" * 400 + b"}]"),
        post("nightscout: wrong shapes", NIGHTSCOUT, "/ns/api/v1/entries", ns,
             b'[1,"x",null,[],{"type":["sgv"]},{"type":"sgv","sgv":{"a":1},"date":"\\ud800"},'
             b'{"type":"sgv","sgv":"120","dateString":"\\u0000"}]'),
        post("nightscout: string body", NIGHTSCOUT, "/ns/api/v1/entries", ns, b'"entries"'),
        post("nightscout: bad treatments", NIGHTSCOUT, "/ns/api/v1/treatments", ns,
             b'[{"glucose":"1e400","created_at":"' + now.encode() + b'"},{"glucose":100,"date":'
             + b"9" * 400 + b'},{"glucose":100,"created_at":"\\ud800","notes":"\\u0000"},{"glucose":[1]}]'),
        post("fhir: coding.code list", FHIR_OBSERVATION, "/fhir/Observation", fhir, _json(bad_observations[0])),
        post("fhir: coding.code object", FHIR_OBSERVATION, "/fhir/Observation", fhir, _json(bad_observations[1])),
        post("fhir: not an Observation", FHIR_OBSERVATION, "/fhir/Observation", fhir, b'{"resourceType":["x"]}'),
        post("fhir: year-1 Observation", FHIR_OBSERVATION, "/fhir/Observation", fhir, _json(bad_observations[3])),
        post("fhir: batch of bad entries", FHIR_BUNDLE, "/fhir", fhir, _json({
            "resourceType": "Bundle", "type": "batch",
            "entry": [{"resource": o, "request": {"method": "POST", "url": "Observation"}} for o in bad_observations]
            + [1, None, {"resource": "\ud800"}],
        })),
        post("fhir: transaction of bad entries", FHIR_BUNDLE, "/fhir", fhir, _json({
            "resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": o, "request": {"method": "POST", "url": "Observation"}} for o in bad_observations],
        })),
        post("fhir: entry not a list", FHIR_BUNDLE, "/fhir", fhir,
             b'{"resourceType":"Bundle","type":"batch","entry":{"a":1}}'),
        Hostile("read: cursor Infinity", READ, "GET", readings_path, key, params={"cursor": _cursor("[Infinity,1]")}),
        Hostile("read: cursor beyond 64 bits", READ, "GET", readings_path, key,
                params={"cursor": _cursor(f'["2026-01-01T00:00:00+00:00",{2**70}]')}),
        Hostile("read: garbage cursor", READ, "GET", readings_path, key, params={"cursor": "%%%\u0000"}),
        Hostile("read: from year 1 at +14:00", READ, "GET", readings_path, key,
                params={"from": "0001-01-01T00:00:00+14:00"}),
        Hostile("read: to year 9999 at -14:00", READ, "GET", readings_path, key,
                params={"to": "9999-12-31T23:59:59-14:00", "limit": "99999999999999999999"}),
        Hostile("read: nightscout 1e400 date", READ, "GET", "/ns/api/v1/entries", ns,
                params={"find[date][$gte]": "1e400", "count": str(2**64)}),
        Hostile("read: alert id 2^63", READ, "POST", f"/api/v1/alerts/{2**63}/acknowledge", key),
    ]  # fmt: skip

    filler_item = '{"value":"x","unit":"mg/dL","measured_at":"' + now + '","note":"'
    room = max_body_bytes - len(filler_item) - 64
    near_limit_item = ('{"readings":[' + filler_item + "n" * room + '"}]}').encode()
    too_many = ('{"readings":[' + ",".join(["{}"] * (max_batch_readings + 1)) + "]}").encode()
    bomb = gzip.compress(b"0" * (max_body_bytes * 8), compresslevel=9)
    numbers = b'{"readings":[' + b"1," * ((max_body_bytes - 64) // 2) + b"1]}"
    objects = b'{"readings":[' + b"{}," * ((max_body_bytes - 64) // 3) + b"{}]}"
    wide_item = '{"value":"x","unit":"mg/dL","measured_at":"' + now + '","note":"' + "w" * 400 + '"}'
    wide_batch = '{"readings":[' + ",".join([wide_item] * min(max_batch_readings, max_body_bytes // 500)) + "]}"
    heavy = [
        device_post(f"readings: {max_batch_readings:,} bad items", _bad_batch(max_batch_readings)),
        device_post("readings: near-limit body, one bad item", near_limit_item),
        device_post("readings: near-limit body, not JSON", b"[" + b"1," * ((max_body_bytes - 64) // 2)),
        device_post("readings: body over the limit", b"0" * (max_body_bytes + 1)),
        device_post("readings: near-limit array of 2.6 million numbers", numbers),
        device_post("readings: near-limit array of 1.7 million objects", objects),
        device_post("readings: near-limit batch of wide bad items", wide_batch.encode()),
        device_post("readings: gzip bomb", bomb, gz),
        device_post(f"readings: {max_batch_readings + 1:,} items", too_many),
        post("nightscout: near-limit entries", NIGHTSCOUT, "/ns/api/v1/entries", ns,
             ("[" + ",".join(['{"type":"sgv","sgv":-1,"date":"x"}'] * (max_body_bytes // 40)) + "]").encode()),
        post("nightscout: 10,000 bad entries", NIGHTSCOUT, "/ns/api/v1/entries", ns,
             ("[" + ",".join(['{"type":"sgv","sgv":-1,"date":"x"}'] * max_batch_readings) + "]").encode()),
        post("fhir: near-limit Observation", FHIR_OBSERVATION, "/fhir/Observation", fhir,
             _json(observation(note=[{"text": "n" * (max_body_bytes - 1024)}], valueQuantity={"value": "x"}))),
    ]  # fmt: skip
    return Corpus(light, heavy)


def memory_mb(pid: int) -> dict[str, float]:
    """``VmRSS`` (resident now) and ``VmHWM`` (resident at its peak) of process ``pid``, in MB (Linux)."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    return found


def reported_rejections(request: Hostile, response: httpx.Response) -> int:
    """How many rejections the answer says were recorded: each refused item of a 200, or the whole message of a
    4xx after authentication. 401/403 (nobody to record against) and read endpoints report none."""
    status = response.status_code
    if request.kind == READ or status in (401, 403) or status >= 500:
        return 0
    if request.kind == READINGS:
        return len(response.json().get("rejected", [])) if status == 200 else 1
    if request.kind == NIGHTSCOUT:
        return int(response.headers.get("x-telemon-rejected", "0")) if status == 200 else 1
    if request.kind == FHIR_OBSERVATION:
        return 0 if status < 300 else 1
    body = response.json()
    if status == 200:
        return sum(1 for e in body.get("entry", []) if not str(e.get("response", {}).get("status", "")).startswith("2"))
    issues = body.get("issue", []) if isinstance(body, dict) else []
    if issues and str(issues[0].get("diagnostics", "")).startswith("transaction refused"):
        return len(issues) - 1
    return 1
