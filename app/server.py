"""The FastAPI applications: wiring of routes, start-up (database, migrations) and graceful shutdown.

``create_full_app`` is the whole product; ``create_ingest_app`` is the lean app of an ingest-role
process (see ``app.ingest.tier``). ``create_app`` picks one by ``settings.role``: ``warroom serve`` and the
tests build their app with it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import FrameType
from typing import Any

import asyncpg
import uvicorn
from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from alerts.evaluation.live import AlertService
from alerts.notify import notifyfile
from alerts.notify.delivery import DeliveryService
from app import __version__
from app.access.keys import KeyStore
from app.access.ratelimit import RateLimiter
from app.access.sessions import SessionStore
from app.api import alert_stream, health, oncall, schemas, scrape
from app.api import alerts as alerts_api
from app.api import campaigns as campaigns_api
from app.api import docs as api_docs
from app.api import ingest as ingest_api
from app.api import notifications as notifications_api
from app.api import sessions as sessions_api
from app.api.admission import Admission
from app.api.browser_security import BrowserSecurity
from app.api.cors import SegmentCors
from app.api.services import FullServices, IngestServices
from app.campaigns import model as campaign_files
from app.campaigns import store as campaign_store
from app.core import errors
from app.core.database import create_pool, head_revision, open_database, upgrade_async
from app.core.settings import Settings
from app.core.supervision import Supervisor
from app.ingest.events import json_schema
from app.ingest.group_commit import GroupCommitter, prepare_connection
from app.ingest.tier import IngestProcesses
from app.metrics.live import LiveMetrics
from dashboard import wall

log = logging.getLogger(__name__)

ENGINE_GC_THRESHOLDS = (20_000, 20, 10)
"""The engine allocates many small long-lived objects; fewer young collections, each still short."""
POOL_SPARE = 4
"""Connections beyond the ingest writers, for key lookups, readiness checks and the API."""

DESCRIPTION = """\
Ingest API of Promo War-Room. Integrators post events (traffic, product views,
add-to-cart, orders, payments, refunds, stock, spend) with an `ingest` key.
Every event carries an `event_id`; posting it again is harmless (reported as a
duplicate). A 2xx answer means the accepted events are committed.
"""


@asynccontextmanager
async def _database(settings: Settings, migrate: bool) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """The database opened (embedded if need be, migrated if asked) and a pool sized for the writers."""
    dsn, embedded = await asyncio.to_thread(open_database, settings)
    try:
        if migrate:
            await upgrade_async(dsn)
        pool = await create_pool(dsn, max_size=settings.writers + POOL_SPARE, init=prepare_connection)
        try:
            yield dsn, pool
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            started = time.monotonic()
            await asyncio.to_thread(embedded.release)
            log.info("embedded PostgreSQL released", extra={"seconds": round(time.monotonic() - started, 3)})


def _services(
    settings: Settings, pool: asyncpg.Pool, supervisor: Supervisor, on_commit: Callable[[], None] = lambda: None
) -> IngestServices:
    """What every role runs (keys, sessions, rate limits, the started group committer); ``supervisor`` runs every
    long-running loop."""
    committer = GroupCommitter(
        pool,
        writers=settings.writers,
        group_events=settings.group_events,
        queue_events=settings.queue_events,
        commit_timeout_s=settings.commit_timeout_s,
        drain_timeout_s=settings.shutdown_grace_s,
        on_commit=on_commit,
        supervisor=supervisor,
    )
    committer.start()
    return IngestServices(
        settings=settings,
        pool=pool,
        keys=KeyStore(pool, settings.key_cache_s),
        limiter=RateLimiter(),
        committer=committer,
        sessions=SessionStore(pool, settings.key_cache_s),
        supervisor=supervisor,
        schema_head=head_revision(),
    )


def _settle_heap() -> None:
    """Move everything start-up allocated out of the collector's sight, so collections stay short."""
    gc.collect()
    gc.freeze()


async def _settle_heap_after(caught_up: asyncio.Event) -> None:
    """Once the engine has replayed the stored events, its state is long-lived: stop scanning it."""
    await caught_up.wait()
    _settle_heap()


class WarRoomApp(FastAPI):
    """FastAPI with the hottest route, ``POST /v1/events``, served before FastAPI's own stack; every
    request body admitted (key, size, time, concurrency) before anything reads it; and browsers'
    cross-origin posts to the Segment-compatible endpoints (``app.api.cors``) answered outside all of it,
    so refusals carry CORS headers too; browser security headers (``app.api.browser_security``) outermost,
    so every answer, whichever layer gives it, carries them."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        super().__init__(**options)
        self._routers: list[APIRouter] = []
        self.admission = Admission(self._dispatch, settings, self.api_routes)
        self.cors = SegmentCors(self.admission, settings.cors_origins)
        self.browser_security = BrowserSecurity(self.cors)

    def allow_inline_scripts(self, script_hashes: Iterable[str]) -> None:
        """Let HTML pages run the inline scripts with these hashes (known once the pages writing them are mounted)."""
        self.browser_security = BrowserSecurity(self.cors, script_hashes)

    def include_router(self, router: APIRouter, **options: Any) -> None:  # type: ignore[override]
        super().include_router(router, **options)
        self._routers.append(router)

    def api_routes(self) -> list[BaseRoute]:
        """Every route, those of included routers too (FastAPI keeps them behind private wrappers; they are
        included without a prefix, so their paths match requests as they stand)."""
        return [*self.router.routes, *(route for router in self._routers for route in router.routes)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        await self.browser_security(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == ingest_api.EVENTS_PATH and scope["method"] == "POST":
            await ingest_api.serve_events(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _timed_steps(*steps: tuple[str, Callable[[], Awaitable[None]]]) -> dict[str, float]:
    """Run the shutdown steps in order and say how long each took, so a slow stop shows where it waited."""
    seconds: dict[str, float] = {}
    for name, step in steps:
        started = time.monotonic()
        await step()
        seconds[name] = round(time.monotonic() - started, 3)
    return seconds


class Server(uvicorn.Server):
    """uvicorn's server, passing a stop signal on to the ingest processes at once, so they drain in
    parallel with this process instead of after its connections have closed."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        ingest_tier: IngestProcesses | None = getattr(getattr(self.config.app, "state", None), "ingest_tier", None)
        if ingest_tier is not None:
            ingest_tier.terminate()
        super().handle_exit(sig, frame)


def create_app(settings: Settings, on_ready: Callable[[], None] = lambda: None) -> FastAPI:
    """The app for ``settings.role``: the whole product, or only the ingest endpoints (``on_ready`` is an
    ingest app's, see ``create_ingest_app``)."""
    return create_ingest_app(settings, on_ready) if settings.role == "ingest" else create_full_app(settings)


def create_full_app(settings: Settings) -> FastAPI:
    """Build the whole product; the database is opened (and migrated) when it starts.

    With ``WARROOM_INGEST_PROCESSES`` set, it also starts that many ingest-role
    processes on ``WARROOM_INGEST_PORT`` and is ready only once they are.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with _database(settings, migrate=True) as (dsn, pool):
            async with pool.acquire() as conn:
                for campaign in campaign_files.load_directory(settings.campaigns_dir):
                    await campaign_store.save(conn, campaign)
            supervisor = Supervisor()
            metrics = LiveMetrics(pool, dsn, supervisor=supervisor)
            await metrics.start()
            alerts = AlertService(metrics, pool, settings.rules_dir)
            await alerts.start()
            delivery = DeliveryService(alerts, pool, notifyfile.load(settings.notify_file), settings.base_url)
            await delivery.start()
            services = FullServices(
                **vars(_services(settings, pool, supervisor, metrics.wake)),
                metrics=metrics,
                alerts=alerts,
                delivery=delivery,
            )
            app.state.services, committer = services, services.committer
            ingest_tier = app.state.ingest_tier = IngestProcesses(settings, dsn, supervisor=supervisor)
            gc.set_threshold(*ENGINE_GC_THRESHOLDS)
            settle = asyncio.create_task(_settle_heap_after(metrics.caught_up), name="settle-heap")
            try:
                await ingest_tier.start()
                async with scrape.metrics_listener(settings, services):
                    log.info("ready", extra={"version": __version__})
                    yield
            finally:
                settle.cancel()
                steps = await _timed_steps(
                    ("ingest_tier", ingest_tier.stop),
                    ("group_commit", committer.drain_and_stop),
                    ("delivery", delivery.stop),
                    ("alerts", alerts.stop),
                    ("metrics", metrics.stop),
                    ("supervisor", supervisor.stop),
                )
                log.info("services stopped", extra={"seconds": steps})
        log.info("stopped")

    app = _war_room_app(
        settings,
        "Promo War-Room",
        lifespan,
        [
            campaigns_api.router,
            alerts_api.router,
            alert_stream.router,
            notifications_api.router,
            oncall.router,
            sessions_api.router,
        ],
    )
    wall_app = wall.mount(app, settings)
    app.allow_inline_scripts(wall_app.csp_hashes())
    return app


def create_ingest_app(settings: Settings, on_ready: Callable[[], None] = lambda: None) -> FastAPI:
    """Only what integrators post to, plus health and metrics: no engine, no alerts, no campaigns.

    It does not migrate (the full server owns the schema; ``/readyz`` says when
    it is behind) and calls ``on_ready`` once it can commit.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with _database(settings, migrate=False) as (_, pool):
            supervisor = Supervisor()
            services = app.state.services = _services(settings, pool, supervisor)
            committer = services.committer
            try:
                _settle_heap()
                log.info("ready", extra={"version": __version__, "role": "ingest"})
                on_ready()
                yield
            finally:
                await committer.drain_and_stop()
                await supervisor.stop()
        log.info("stopped")

    return _war_room_app(settings, "Promo War-Room ingest", lifespan, [])


def _war_room_app(
    settings: Settings,
    title: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    routers: list[APIRouter],
) -> WarRoomApp:
    """The app of either role: health and ingest, then the role's own ``routers``, then the metrics scrape and
    the API docs (in this order, which is the order routes match and the OpenAPI document lists them)."""
    app = WarRoomApp(
        settings,
        title=title,
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    for router in (health.router, ingest_api.router, *routers):
        app.include_router(router)
    app.add_route(scrape.METRICS_PATH, scrape.guarded_metrics, include_in_schema=False)
    app.include_router(api_docs.router)
    _publish_event_schema(app)
    return app


def _publish_event_schema(app: FastAPI) -> None:
    """Add the msgspec-generated response and event schemas to the OpenAPI document FastAPI builds."""
    schemas.publish(app, lambda: json_schema()[1])
