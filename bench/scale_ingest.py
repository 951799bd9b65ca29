"""The ingest paths of ``bench.ingest`` on the season databases of ``bench.scale``: does storing a reading cost
more when ``readings`` holds a region's season?

At each size, in rounds (the sizes in turn within a round, so that the shared machine's load falls on each
alike), the phases of ``bench.ingest`` against the same servers it starts: COPY into ``readings`` (the ceiling),
HTTP batches of 1,000 through ``telemon serve --roles api``, MQTT messages of 50 readings and of one reading
through the real consumer, and a raw paho subscriber that stores nothing, on a private Mosquitto. Nothing is
emptied: each phase sends new devices' readings into the season's tables (new patients, each in a care team of
its own, with their readings' place in every index as a new patient's would be), checks that they are all
stored and counts what they added. Once measured, those patients are removed with every row that names them, and
the tables vacuumed, so that a kept season holds the rows it was built with (its files keep the space, reused).

The figures are ``bench.ingest``'s: each path's rate (best round) and its ratio to its baseline, and the peak
RSS of the API server and of the consumer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import BenchDevice, Helper, Publisher, dumps, peak_rss_mb, say, start_api_server
from bench.dashboard import _ident
from bench.ingest import (
    HTTP_BATCH,
    MQTT_BATCH,
    TARGETS,
    DevicesTables,
    MqttRun,
    Phase,
    chunks,
    interleave,
    make_devices,
    mqtt_messages,
    phase_copy,
    phase_http,
    phase_raw,
    phases_consumer,
    post_all,
    private_broker,
    report,
    rows_for_copy,
)
from ingest.mqtt import broker_speaks_mqtt5
from telemon.db import create_pool

STORED_PHASES = ("copy", "http_batch", "mqtt_batch", "mqtt_single")  # each with devices of its own
PHASES = (*STORED_PHASES, "mqtt_raw")  # the raw subscriber receives the single-reading phase's messages again

NAMED = """
SELECT c.relname AS table_name, a.attname AS column_name
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND NOT a.attisdropped
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND a.attname IN ('patient_id', 'device_id', 'team_id')
  AND c.relname NOT IN ('patients', 'devices', 'care_teams')
"""
OWNERS = """
SELECT d.patient_id, p.team_id FROM devices d JOIN patients p ON p.id = d.patient_id WHERE d.id = ANY($1::text[])
"""


@dataclass(frozen=True)
class IngestParams:
    devices: int  # per phase and round
    per_device: int  # readings per device in the COPY, HTTP and 50-reading phases
    single_per_device: int  # single-reading messages per device
    rounds: int
    http_concurrency: int = 4
    window: int = 1000  # MQTT messages not yet confirmed by the receiving process (``bench.ingest --window``)


QUICK = IngestParams(devices=50, per_device=600, single_per_device=300, rounds=2)
FULL = IngestParams(devices=100, per_device=2000, single_per_device=300, rounds=3)


@dataclass
class Target:
    """One size while its ingest is measured: its database, API server and what its phases measured."""

    label: str
    url: str
    work: Path
    pool: asyncpg.Pool | None = None
    server: Helper | None = None
    base: str = ""
    phases: dict[str, list[Phase]] = field(default_factory=lambda: {name: [] for name in PHASES})
    devices: list[str] = field(default_factory=list)  # every device this measure added, to forget them
    consumer_rss_mb: float = 0.0
    server_rss_mb: float = 0.0


async def measure_ingest(targets: Sequence[tuple[str, str]], params: IngestParams, work: Path) -> dict[str, Any]:
    """``bench.ingest``'s figures on each database of ``targets`` (label, URL), in turn within each round:
    ``{label: {figure: value}}``."""
    sites = [Target(label, url, work / f"ingest-{label}") for label, url in targets]
    run_id = uuid.uuid4().hex[:10]
    with private_broker(work / "ingest-broker") as mqtt_url:
        mqtt5 = await asyncio.to_thread(broker_speaks_mqtt5, mqtt_url)
        publisher = Publisher(mqtt_url, f"telemon-bench-pub-{run_id}", mqtt5, 0)
        await asyncio.to_thread(publisher.connect)
        try:
            for site in sites:
                site.work.mkdir(parents=True, exist_ok=True)
                site.pool = await create_pool(site.url, max_size=4)
                site.server, site.base = await start_api_server(site.url, site.work, TELEMON_LOG_LEVEL="WARNING")
            for round_no in range(1, params.rounds + 1):
                for site in sites:
                    say(f"  ingest, round {round_no} of {params.rounds}: {site.label}")
                    run = Round(site, params, publisher, mqtt_url, mqtt5, f"{run_id}-{site.label}")
                    await run.measure(round_no)
        finally:
            await asyncio.to_thread(publisher.close)
            for site in sites:
                await close(site)
    return {site.label: figures(site) for site in sites}


@dataclass
class Round:
    """One round of one size: new devices for each phase (and two to warm the servers up), then the phases."""

    site: Target
    params: IngestParams
    publisher: Publisher
    mqtt_url: str
    mqtt5: bool
    run_id: str

    async def devices(self, now: dt.datetime, count: int | None = None) -> list[BenchDevice]:
        assert self.site.pool is not None
        made = await make_devices(self.site.pool, count or self.params.devices, self.params.per_device, now)
        self.site.devices.extend(d.device_id for d in made)
        return made

    async def measure(self, round_no: int) -> None:
        site, params = self.site, self.params
        assert site.pool is not None and site.server is not None
        now = dt.datetime.now(dt.UTC)
        sets = {name: await self.devices(now) for name in STORED_PHASES}
        warm = await self.devices(now, count=2)  # one for HTTP, one for MQTT
        everyone = [d for devices in (*sets.values(), warm) for d in devices]
        tables = DevicesTables(site.pool, everyone)
        http_requests = interleave(
            [[(d.token, dumps({"readings": c}), len(c)) for c in chunks(d.readings, HTTP_BATCH)]
             for d in sets["http_batch"]]
        )  # fmt: skip
        first = warm[0].readings[:HTTP_BATCH]
        await post_all(site.base, [(warm[0].token, dumps({"readings": first}), len(first))], 1)
        ids_file = site.work / f"devices-{round_no}.txt"
        ids_file.write_text("\n".join(d.device_id for d in (*sets["mqtt_single"], *warm)), encoding="utf-8")
        mqtt_run = MqttRun(
            tables, site.url, self.mqtt_url, self.mqtt5, site.work, self.run_id, self.publisher,
            batch_messages=mqtt_messages(sets["mqtt_batch"], MQTT_BATCH, params.per_device),
            single_messages=mqtt_messages(sets["mqtt_single"], 1, params.single_per_device),
            warm=mqtt_messages(warm[1:], MQTT_BATCH, params.per_device)[:20],
            ids_file=ids_file, window=params.window, consumers=1,
        )  # fmt: skip
        site.phases["copy"].append(await phase_copy(tables, rows_for_copy(sets["copy"], now)))
        report(site.phases["copy"][-1])
        site.phases["http_batch"].append(
            await phase_http(tables, site.base, http_requests, params.http_concurrency, site.server)
        )
        report(site.phases["http_batch"][-1])
        batch, single = await phases_consumer(mqtt_run, round_no, on_stop=self.consumer_rss)
        site.phases["mqtt_batch"].append(batch)
        site.phases["mqtt_single"].append(single)
        site.phases["mqtt_raw"].append(await phase_raw(mqtt_run, round_no))

    def consumer_rss(self, helper: Helper) -> None:
        if helper.proc is not None:
            self.site.consumer_rss_mb = max(self.site.consumer_rss_mb, peak_rss_mb(helper.proc.pid))


def figures(site: Target) -> dict[str, float]:
    """Each path's best round, its ratio to its baseline (best against best, as ``bench.ingest``), and the
    processes' peak RSS."""
    best = {name: max(phases, key=lambda p: p.rate) for name, phases in site.phases.items()}
    out = {f"ingest_{name}_rps": round(phase.rate, 1) for name, phase in best.items()}
    for key, phase, baseline, _, _ in TARGETS:
        out[key] = round(best[phase].rate / best[baseline].rate, 4)
    out["ingest_server_rss_mb"] = round(site.server_rss_mb, 1)
    out["consumer_rss_mb"] = round(site.consumer_rss_mb, 1)
    return out


async def close(site: Target) -> None:
    """Stop the site's server and forget every patient this measure added."""
    if site.server is not None:
        if site.server.proc is not None:
            site.server_rss_mb = peak_rss_mb(site.server.proc.pid)
        await site.server.stop()
    if site.pool is None:
        return
    try:
        if site.devices:
            async with site.pool.acquire() as conn:
                await forget(conn, site.devices)
    finally:
        await site.pool.close()


async def forget(conn: asyncpg.Connection, device_ids: Sequence[str]) -> None:
    """Remove the bench's patients (and their care teams) with every row that names them, in one transaction.
    The schema keeps a patient's record for good (no cascading deletes); the bench sets the foreign keys' checks
    aside for it (``session_replication_role``, a superuser's setting: the tests' PostgreSQL), which is safe
    because every table that names one of them is emptied of her."""
    owners = await conn.fetch(OWNERS, list(device_ids))
    ids = {
        "patient_id": list({r["patient_id"] for r in owners}),
        "device_id": list(device_ids),
        "team_id": list({r["team_id"] for r in owners}),
    }
    emptied = {"devices", "patients", "care_teams"}
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        for row in await conn.fetch(NAMED):
            kind = "uuid" if row["column_name"] != "device_id" else "text"
            table, column = _ident(row["table_name"]), _ident(row["column_name"])
            deleted = await conn.execute(
                f"DELETE FROM {table} WHERE {column} = ANY($1::{kind}[])", ids[row["column_name"]]
            )
            if deleted != "DELETE 0":
                emptied.add(row["table_name"])
        await conn.execute("DELETE FROM devices WHERE id = ANY($1::text[])", ids["device_id"])
        await conn.execute("DELETE FROM patients WHERE id = ANY($1::uuid[])", ids["patient_id"])
        await conn.execute("DELETE FROM care_teams WHERE id = ANY($1::uuid[])", ids["team_id"])
    # the deleted rows' pages are no longer all-visible, and their index entries stay until a vacuum: a kept season
    # would read them (a later run's index-only scans fetching table pages), so they go now
    await conn.execute("VACUUM (ANALYZE) " + ", ".join(_ident(name) for name in sorted(emptied)))
    say(
        f"  ingest: {len(ids['patient_id'])} bench patients removed with their rows; {', '.join(sorted(emptied))} vacuumed"
    )
