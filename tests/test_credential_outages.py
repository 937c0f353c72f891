"""Key and session checks during a database outage, and sign-out racing a lookup.

A pool of the test's own stands in for the database's answers so the outage errors are the real asyncpg and
PostgreSQL exception types (as in tests/test_commit_failures.py), the clock is injected (no sleeping), and the
interleaving of a lookup with a sign-out is driven step by step.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from app.access.keys import STALE_GRACE_S, KeyCheckUnavailable, KeyStore
from app.access.sessions import SessionStore
from app.core.errors import ApiError

NOW = datetime.now(UTC)
KEY_ID, SECRET = "ab" * 6, "s" * 32
CACHE_S = 10.0


def _postgres(cls: type[asyncpg.PostgresError], message: str = "x") -> asyncpg.PostgresError:
    return cls(message)


OUTAGES = [
    _postgres(asyncpg.CrashShutdownError, "terminating connection because of crash of another server process"),
    _postgres(asyncpg.OperatorInterventionError, "canceling statement due to conflict with recovery"),
    _postgres(asyncpg.QueryCanceledError, "canceling statement due to statement timeout"),
    _postgres(asyncpg.DiskFullError, "could not extend file"),
    _postgres(asyncpg.OutOfMemoryError, "out of memory"),
    ConnectionRefusedError(111, "Connection refused"),
]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Answers:
    """A pool whose connections answer ``fetchrow`` with ``row``, or raise ``error``; ``gate`` holds an answer back."""

    def __init__(self, row: dict[str, Any] | None) -> None:
        self.row, self.error = row, None
        self.gate: asyncio.Event | None = None
        self.asked = asyncio.Event()
        self.executed: list[str] = []

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Answers]:
        if self.error is not None:
            raise self.error
        yield self

    async def fetchrow(self, query: str, *args: Any) -> dict[str, Any] | None:
        self.asked.set()
        if self.gate is not None:
            await self.gate.wait()
        return self.row

    async def execute(self, query: str, *args: Any) -> str:
        self.executed.append(query)
        return "DELETE 1"


def key_row() -> dict[str, Any]:
    return {
        "key_id": KEY_ID,
        "name": "screen-1",
        "scope": "screen",
        "rate_limit_per_s": None,
        "created_at": NOW,
        "revoked_at": None,
        "secret_sha256": hashlib.sha256(SECRET.encode()).digest(),
        "expires_at": NOW + timedelta(hours=1),
    }


def key_token() -> str:
    return f"wr_{KEY_ID}_{SECRET}"


SESSION_TOKEN = "t" * 43


@pytest.mark.parametrize("exc", OUTAGES, ids=lambda e: type(e).__name__)
async def test_every_outage_error_makes_an_unknown_key_unavailable(exc):
    pool = Answers(key_row())
    pool.error = exc
    with pytest.raises(KeyCheckUnavailable):
        await KeyStore(pool, CACHE_S).verify(key_token())  # type: ignore[arg-type]


@pytest.mark.parametrize("exc", OUTAGES, ids=lambda e: type(e).__name__)
async def test_every_outage_error_makes_an_unknown_session_a_503(exc):
    pool = Answers(key_row())
    pool.error = exc
    with pytest.raises(ApiError) as refused:
        await SessionStore(pool, CACHE_S).find(SESSION_TOKEN)  # type: ignore[arg-type]
    assert refused.value.status == 503 and refused.value.headers["Retry-After"]


async def test_a_bug_in_a_key_check_is_not_mistaken_for_an_outage():
    pool = Answers(key_row())
    pool.error = _postgres(asyncpg.UndefinedTableError, 'relation "api_keys" does not exist')
    with pytest.raises(asyncpg.UndefinedTableError):
        await KeyStore(pool, CACHE_S).verify(key_token())  # type: ignore[arg-type]


async def test_a_cached_key_is_trusted_through_an_outage_only_for_the_grace_period():
    pool, clock = Answers(key_row()), Clock()
    store = KeyStore(pool, CACHE_S, clock=clock)  # type: ignore[arg-type]
    assert (await store.verify(key_token())) is not None
    pool.error = _postgres(asyncpg.CrashShutdownError)
    clock.now += CACHE_S + STALE_GRACE_S - 1
    assert (await store.verify(key_token())) is not None, "stale beats nothing for a short outage"
    clock.now += 2
    with pytest.raises(KeyCheckUnavailable):
        await store.verify(key_token())


async def test_a_cached_session_is_trusted_through_an_outage_only_for_the_grace_period():
    pool, clock = Answers(key_row()), Clock()
    store = SessionStore(pool, CACHE_S, clock=clock)  # type: ignore[arg-type]
    assert (await store.find(SESSION_TOKEN)) is not None
    pool.error = ConnectionRefusedError(111, "Connection refused")
    clock.now += CACHE_S + STALE_GRACE_S - 1
    assert (await store.find(SESSION_TOKEN)) is not None
    clock.now += 2
    with pytest.raises(ApiError) as refused:
        await store.find(SESSION_TOKEN)
    assert refused.value.status == 503


async def test_a_lookup_that_read_the_row_before_sign_out_does_not_bring_the_session_back():
    pool = Answers(key_row())
    pool.gate = asyncio.Event()
    store = SessionStore(pool, CACHE_S)  # type: ignore[arg-type]
    lookup = asyncio.create_task(store.find(SESSION_TOKEN))
    await pool.asked.wait()  # the lookup has read the row (still there) and waits for its answer
    await store.end(SESSION_TOKEN)
    assert pool.executed and pool.executed[0].startswith("DELETE")
    pool.gate.set()
    await lookup
    assert (await store.find(SESSION_TOKEN, lookup=False)) is None, "the ended session must not be cached again"
    assert (await store.find(SESSION_TOKEN)) is None, "nor found again in this process"


async def test_a_key_check_that_fails_unexpectedly_in_admission_is_answered_as_json(monkeypatch):
    from app.api import admission
    from app.core.settings import Settings

    async def broken(request: Any) -> Any:
        raise _postgres(asyncpg.UndefinedTableError, 'relation "api_keys" does not exist')

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the request must not reach the app")

    monkeypatch.setattr(admission, "_ingest_key", broken)
    guard = admission.Admission(app, Settings.from_env({"DATABASE_URL": "postgresql://unused/x"}), lambda: [])
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/events",
        "headers": [(b"content-length", b"2")],
        "query_string": b"",
        "scheme": "http",
        "server": ("test", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await guard(scope, receive, send)
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    assert start["status"] == 500 and dict(start["headers"])[b"content-type"].startswith(b"application/json")
    assert b'"error"' in body
