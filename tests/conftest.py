"""Shared fixtures: a real embedded PostgreSQL, a fresh database per test, the real server over HTTP.

One PostgreSQL server runs for the whole session; each test gets its own
database cloned from a migrated template, so tests are isolated and fast.
Servers run uvicorn in a background thread on a free port, so tests talk
HTTP exactly as integrators do.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import queue
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from app.access import keys
from app.api.connections import server_config
from app.core.database import EmbeddedPostgres, upgrade
from app.core.settings import Settings
from app.server import create_app

TEMPLATE = "warroom_template"
TEST_SERVER_SETTINGS = "ALTER SYSTEM SET fsync = off; SELECT pg_reload_conf();"
"""The session's server holds hundreds of throwaway databases: without fsync each clone and checkpoint stays in the
page cache (a killed PostgreSQL still recovers from its WAL; only an operating-system crash could lose data)."""
SERVER_START_TIMEOUT_S = 30.0
DATABASES_AHEAD = 2
"""Fresh databases cloned ahead of the tests that will take them (see ``DatabaseStock``)."""
DATABASE_WAIT_S = 120.0
_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres]:
    """Not under pytest's numbered temp directories: a second pytest run on the machine prunes old ones,
    which would delete this server's data directory under a long run."""
    with tempfile.TemporaryDirectory(prefix="warroom-test-pg-", ignore_cleanup_errors=True) as directory:
        server = EmbeddedPostgres(Path(directory) / "pgdata")
        server._server.psql(TEST_SERVER_SETTINGS)
        server.ensure_database(TEMPLATE)
        upgrade(server.dsn(TEMPLATE))
        yield server
        server.release()


class DatabaseStock:
    """Databases cloned from the template on a thread of their own while tests run, so that a test's fresh
    database is usually ready when it starts (a clone costs PostgreSQL about 0.3 s, and 190 tests take one)."""

    def __init__(self, server: EmbeddedPostgres) -> None:
        self._server = server
        self._ready: queue.Queue[str] = queue.Queue(maxsize=DATABASES_AHEAD)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="database-stock", daemon=True)
        self._thread.start()

    def take(self) -> str:
        """The name of a fresh, migrated database nobody else uses."""
        return self._ready.get(timeout=DATABASE_WAIT_S)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=DATABASE_WAIT_S)

    def _fill(self) -> None:
        while not self._stopping.is_set():
            name = f"test_{next(_database_numbers)}"
            self._server.create_database(name, template=TEMPLATE)
            while not self._stopping.is_set():
                try:
                    self._ready.put(name, timeout=0.1)
                    break
                except queue.Full:
                    continue


@pytest.fixture(scope="session")
def databases(postgres: EmbeddedPostgres) -> Iterator[DatabaseStock]:
    stock = DatabaseStock(postgres)
    yield stock
    stock.stop()


@pytest.fixture
def dsn(postgres: EmbeddedPostgres, databases: DatabaseStock) -> str:
    """A fresh, migrated database for this test."""
    return postgres.dsn(databases.take())


PORTS_PER_PROCESS = 1500
"""Each pytest process (an xdist worker, or the outage run) takes listening ports from a range of its own, below
the kernel's ephemeral range: asking the kernel for port 0 lets two workers be handed the same free port."""
_next_port = itertools.count()


def _port_range_start() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) + 1 if worker.startswith("gw") else 0
    return 20_000 + index * PORTS_PER_PROCESS


def free_port() -> int:
    """A port no other pytest process of this run hands out, and that nothing listens on now."""
    start = _port_range_start()
    while True:
        port = start + next(_next_port) % PORTS_PER_PROCESS
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


@dataclass
class RunningServer:
    """A uvicorn server running the app in a background thread."""

    settings: Settings
    port: int
    _server: uvicorn.Server
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def services(self):
        """The running app's services (engine, pool…), for white-box checks."""
        return self._server.config.app.state.services

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=SERVER_START_TIMEOUT_S)
        assert not self._thread.is_alive(), "server did not stop"


def start_server(dsn: str, **overrides: Any) -> RunningServer:
    port = overrides.pop("port", None) or free_port()
    env = {
        "DATABASE_URL": dsn,
        "WARROOM_LOG_LEVEL": "warning",
        "WARROOM_CAMPAIGNS_DIR": "/nonexistent",
        "WARROOM_RULES_DIR": "/nonexistent",
        "WARROOM_NOTIFY_FILE": "/nonexistent",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    settings = Settings.from_env(env)
    config = server_config(
        create_app(settings),
        settings,
        "127.0.0.1",
        port,
        log_level="warning",
        lifespan="on",
        loop="asyncio",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("server failed to start")
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start")
        time.sleep(0.02)
    return RunningServer(settings, port, server, thread)


@pytest.fixture
def server(dsn: str) -> Iterator[RunningServer]:
    running = start_server(dsn)
    yield running
    running.stop()


async def create_key(dsn: str, scope: str = "ingest", name: str | None = None, rate_limit: float | None = None) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        _, token = await keys.create(conn, name or f"{scope}-{next(_database_numbers)}", scope, rate_limit)  # type: ignore[arg-type]
    finally:
        await conn.close()
    return token


async def scrape_metrics(http: httpx.AsyncClient, dsn: str) -> str:
    """``GET /metrics`` as Prometheus scrapes it: with a ``metrics``-scope key (the endpoint is not public)."""
    response = await http.get("/metrics", headers={"Authorization": f"Bearer {await create_key(dsn, 'metrics')}"})
    assert response.status_code == 200, response.text
    return response.text


@pytest.fixture
async def ingest_key(dsn: str) -> str:
    return await create_key(dsn, "ingest")


@pytest.fixture
async def client(server: RunningServer, ingest_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to the running server, authenticated with an ingest key."""
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {ingest_key}"}, timeout=30
    ) as http:
        yield http


@pytest.fixture
async def db(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the test's database, for checking what was stored."""
    conn = await asyncpg.connect(dsn)
    yield conn
    await conn.close()


def event(event_id: str, type_: str = "order_paid", **fields: Any) -> dict[str, Any]:
    """A valid event of the given type, with ``fields`` overriding the defaults."""
    base: dict[str, Any] = {"event_id": event_id, "type": type_}
    defaults = {
        "visit": {"anonymous_id": "a-1"},
        "page_view": {"anonymous_id": "a-1"},
        "product_view": {"user_id": "u-1", "sku": "SKU-1"},
        "add_to_cart": {"user_id": "u-1", "sku": "SKU-1", "quantity": 1},
        "checkout": {"user_id": "u-1"},
        "order_created": {"user_id": "u-1", "order_id": "o-1", "amount": 100},
        "order_paid": {"order_id": "o-1", "amount": 100},
        "order_cancelled": {"order_id": "o-1"},
        "refund": {"order_id": "o-1", "amount": 50},
        "stock_level": {"sku": "SKU-1", "quantity": 10},
        "stock_adjust": {"sku": "SKU-1", "quantity": -1},
        "metric": {"metric": "ad_spend", "value": 10.0},
        "watermark": {"campaign": "night", "occurred_at": "2026-11-11T00:03:12+08:00"},
    }
    base.update(defaults[type_])
    base.update(fields)
    return base


def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0, interval: float = 0.05
) -> Awaitable[None]:
    """Poll ``predicate`` every ``interval`` seconds until it holds; TimeoutError after ``timeout`` seconds
    (asyncio's own timeout, which also cancels a predicate still running then)."""
    return asyncio.wait_for(_poll(predicate, interval), timeout)


async def _poll(predicate: Callable[[], Awaitable[bool]], interval: float) -> None:
    """Polling, not an ``asyncio.Event``: predicates read servers in other threads or processes and the database."""
    while True:
        if await predicate():
            return
        await asyncio.sleep(interval)


@pytest.fixture(name="pg")
def pg_fixture() -> Iterator[EmbeddedPostgres]:
    """A migrated PostgreSQL of the test's own, to stop and start. Not under pytest's temp directories:
    another pytest run on the machine makes their root private again, and PostgreSQL (another user)
    could then no longer read its files (see conftest's ``postgres``)."""
    with tempfile.TemporaryDirectory(prefix="warroom-outage-pg-", ignore_cleanup_errors=True) as directory:
        server = EmbeddedPostgres(Path(directory) / "pgdata")
        server.ensure_database()
        upgrade(server.dsn())
        yield server
        server.release()
