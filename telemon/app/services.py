"""What a running telemon process holds, opened and closed in one place: the database (migrated), the pool,
the MQTT consumer and the scheduler, according to the roles this process runs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from alerts.engine import Engine, EngineWorker
from ingest.service import IngestService
from telemon import loop, runtime
from telemon.app.domains import all_jobs
from telemon.broker_logins import BrokerLogins
from telemon.db import connect, create_pool, when_available
from telemon.migrate import migrate
from telemon.outage import Outage
from telemon.scheduler import Scheduler
from telemon.settings import Settings, parse_mqtt_url, redact
from telemon.webhook_delivery import Deliverer

if TYPE_CHECKING:
    from ingest.mqtt import MqttConsumer

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    pool: asyncpg.Pool
    mqtt_url: str | None
    ingest: IngestService
    engine: Engine
    consumer: MqttConsumer | None = None
    scheduler: Scheduler | None = None
    worker: EngineWorker | None = None
    outage: Outage | None = None  # the HTTP side's view of a database outage (telemon.outage)


@contextlib.asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    async with contextlib.AsyncExitStack() as stack:
        found = await stack.enter_async_context(runtime.endpoints(settings, with_broker="mqtt" in settings.roles))
        # a database that is down (or not up yet) is waited for; a wrong setting stops the process at once
        url = found.database_url
        conn = await when_available(url, lambda: connect(url))
        try:
            await migrate(conn)
        finally:
            await conn.close()
        pool = await when_available(url, lambda: create_pool(url, max_size=settings.db_pool_size))
        stack.push_async_callback(pool.close)
        outage = Outage(pool)
        stack.push_async_callback(outage.close)
        ingest = IngestService(pool, max_readings=settings.max_batch_readings)
        engine = Engine(pool)
        services = Services(settings, pool, found.mqtt_url, ingest, engine, outage=outage)
        # the patients of every committed ingest batch are evaluated in the background
        worker = EngineWorker(engine)
        worker.start()
        stack.push_async_callback(worker.stop)
        ingest.on_commit(worker.submit)
        services.worker = worker
        if "mqtt" in settings.roles and found.mqtt_url:
            from ingest.mqtt import MqttConsumer

            consumer = MqttConsumer(pool, found.mqtt_url, settings, ingest)
            await consumer.start()
            stack.push_async_callback(consumer.stop)
            services.consumer = consumer
            if settings.broker_password_file is not None:
                broker = parse_mqtt_url(found.mqtt_url)
                logins = BrokerLogins(
                    pool,
                    settings.broker_password_file,
                    service_login=(broker.username, broker.password or "") if broker.username else None,
                    reload=settings.broker_reload,
                )
                await logins.start()
                stack.push_async_callback(logins.stop)
        if "scheduler" in settings.roles:
            scheduler = Scheduler(pool, all_jobs())
            scheduler.start()
            stack.push_async_callback(scheduler.stop)
            services.scheduler = scheduler
            deliverer = Deliverer(pool)
            deliverer.start()
            stack.push_async_callback(deliverer.stop)
        loop.settle_gc()
        stack.callback(loop.release_freed_memory())  # hostile bodies' memory back to the system
        log.info(
            "telemon ready",
            extra={
                "roles": list(settings.roles),
                "mqtt_url": redact(found.mqtt_url) if found.mqtt_url else None,
                "embedded_db": not settings.database_url,
            },
        )
        yield services
