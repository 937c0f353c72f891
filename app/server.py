"""The FastAPI application: wiring of routes, start-up (database, migrations) and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI

from alerts import routing
from alerts.delivery import DeliveryService
from alerts.live import AlertService
from app import __version__, alert_stream, alerts_api, campaigns_api, errors, health, ingest_api, notifications_api, oncall, telemetry
from app import campaigns as campaign_files
from app.events import json_schema
from app.database import create_pool, head_revision, open_database, upgrade_async
from app.ingest import GroupCommitter, prepare_connection
from app.keys import KeyStore
from app.metrics.live import LiveMetrics
from app.ratelimit import RateLimiter
from app.services import Services
from app.settings import Settings
from dashboard import wall

log = logging.getLogger(__name__)

POOL_SPARE = 4
"""Connections beyond the ingest writers, for key lookups, readiness checks and the API."""

DESCRIPTION = """\
Ingest API of Promo War-Room. Integrators post events (traffic, product views,
add-to-cart, orders, payments, refunds, stock, spend) with an `ingest` key.
Every event carries an `event_id`; posting it again is harmless (reported as a
duplicate). A 2xx answer means the accepted events are committed.
"""


def create_app(settings: Settings) -> FastAPI:
    """Build the application; the database is opened (and migrated) when it starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dsn, embedded = await asyncio.to_thread(open_database, settings)
        await upgrade_async(dsn)
        pool = await create_pool(dsn, max_size=settings.writers + POOL_SPARE, init=prepare_connection)
        async with pool.acquire() as conn:
            for campaign in campaign_files.load_directory(settings.campaigns_dir):
                await campaign_files.save(conn, campaign)
        metrics = LiveMetrics(pool, dsn)
        await metrics.start()
        alerts = AlertService(metrics, pool, settings.rules_dir)
        await alerts.start()
        delivery = DeliveryService(alerts, pool, routing.load(settings.notify_file), settings.base_url)
        await delivery.start()
        committer = GroupCommitter(
            pool,
            writers=settings.writers,
            group_events=settings.group_events,
            queue_events=settings.queue_events,
            on_commit=metrics.wake,
        )
        committer.start()
        app.state.services = Services(
            settings=settings,
            pool=pool,
            keys=KeyStore(pool, settings.key_cache_s),
            limiter=RateLimiter(),
            committer=committer,
            metrics=metrics,
            alerts=alerts,
            delivery=delivery,
            schema_head=head_revision(),
        )
        log.info("ready", extra={"version": __version__})
        try:
            yield
        finally:
            await committer.drain_and_stop(settings.shutdown_grace_s)
            await delivery.stop()
            await alerts.stop()
            await metrics.stop()
            await pool.close()
            if embedded is not None:
                await asyncio.to_thread(embedded.release)
            log.info("stopped")

    app = FastAPI(title="Promo War-Room", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(ingest_api.router)
    app.include_router(campaigns_api.router)
    app.include_router(alerts_api.router)
    app.include_router(alert_stream.router)
    app.include_router(notifications_api.router)
    app.include_router(oncall.router)
    app.add_route("/metrics", telemetry.metrics_endpoint, include_in_schema=False)
    _publish_event_schema(app)
    wall.mount(app, settings)
    return app


def _publish_event_schema(app: FastAPI) -> None:
    """Add the msgspec-generated event schemas to the OpenAPI document FastAPI builds."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            spec = build()
            spec.setdefault("components", {}).setdefault("schemas", {}).update(json_schema()[1])
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
