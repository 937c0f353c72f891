"""Failed key checks are cheap and throttled: random keys cannot flood the database or evict real keys."""

import secrets
import time

import asyncpg
import httpx
import pytest

from app.access import keys
from app.access.keys import KeyStore
from app.access.ratelimit import RateLimiter
from app.core import telemetry
from tests.conftest import create_key, event, start_server
from tests.helpers import FakeClock


def lookups() -> float:
    return telemetry.KEY_LOOKUPS._value.get()


def random_key() -> str:
    return f"wr_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def test_wait_tells_without_taking_a_token():
    clock = FakeClock()
    limiter = RateLimiter(clock)
    assert limiter.wait("a", 1) == 0  # an unknown bucket is full, and is not created
    assert limiter.acquire("a", 1) == 0 and limiter.acquire("a", 1) == 0  # burst of 2 s at 1/s
    assert limiter.wait("a", 1) == pytest.approx(1.0)
    assert limiter.wait("a", 1) == pytest.approx(1.0)
    clock.now += 0.5
    assert limiter.wait("a", 1) == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.wait("a", 1) == 0 and limiter.acquire("a", 1) == 0


def test_buckets_are_bounded_dropping_refilled_ones_first():
    clock = FakeClock()
    limiter = RateLimiter(clock, max_buckets=10)
    limiter.acquire("busy", 0.001)
    for index in range(100):
        limiter.acquire(f"addr-{index}", 10)
        clock.now += 1  # each earlier bucket has refilled by now
    assert len(limiter._buckets) <= 10
    assert limiter.wait("busy", 0.001) > 0  # still draining, so it was kept


async def test_random_keys_from_one_address_are_throttled_and_lookups_bounded(dsn):
    good = await create_key(dsn, "ingest")
    server = start_server(dsn, WARROOM_AUTH_FAILURES_PER_S=5)  # bursts of 10 failures
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            assert (
                await http.post("/v1/events", json=event("g-1", "visit"), headers={"X-API-Key": good})
            ).status_code == 202
            before, started = lookups(), time.monotonic()
            statuses = []
            for _ in range(200):
                response = await http.post("/v1/events", json=event("x", "visit"), headers={"X-API-Key": random_key()})
                statuses.append(response.status_code)
            allowed = 10 + 5 * (time.monotonic() - started) + 1  # the burst, then 5 per second
            assert statuses[:10] == [401] * 10
            assert statuses.count(401) <= allowed and statuses.count(429) >= 200 - allowed, statuses
            assert lookups() - before <= allowed, "each throttled key check still reached the database"
            assert int(response.headers["Retry-After"]) >= 1
            assert "failed key checks" in response.json()["error"]["message"]
            # a key known to be good passes from the same address meanwhile
            ok = await http.post("/v1/events", json=event("g-2", "visit"), headers={"X-API-Key": good})
            assert ok.status_code == 202
    finally:
        server.stop()


async def test_ids_not_shaped_like_ours_never_reach_the_database(dsn):
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        store = KeyStore(pool, cache_s=2)
        before = lookups()
        for token in ("wr_x_y", "wr_NOTHEX123456_s", "wr_0123456789abcdef_s", "wr_" + "a" * 11 + "_s"):
            assert await store.verify(token) is None
        assert lookups() == before
    finally:
        await pool.close()


async def test_a_revoked_key_is_refused_once_its_cached_row_is_older_than_the_cache_time(dsn, db):
    token = await create_key(dsn, "ingest", name="revoked-later")
    clock = FakeClock()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        store = KeyStore(pool, cache_s=2, clock=clock)
        assert await store.verify(token) is not None
        await db.execute("UPDATE api_keys SET revoked_at = now() WHERE name = 'revoked-later'")
        clock.now += 1.9
        assert await store.verify(token) is not None, "within the cache time the cached row answers"
        clock.now += 0.2
        assert await store.verify(token) is None, "read again after the cache time: revoked"
    finally:
        await pool.close()


async def test_a_flood_of_unknown_ids_does_not_evict_known_keys(dsn, monkeypatch):
    monkeypatch.setattr(keys, "CACHE_ENTRIES", 50)
    monkeypatch.setattr(keys, "UNKNOWN_ENTRIES", 50, raising=False)
    good = await create_key(dsn, "ingest")
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        store = KeyStore(pool, cache_s=60)
        assert await store.verify(good) is not None
        for _ in range(200):
            assert await store.verify(random_key()) is None
        before = lookups()
        assert await store.verify(good) is not None
        assert lookups() == before, "the known key was evicted by unknown ones"
        repeated = random_key()
        await store.verify(repeated)
        await store.verify(repeated)
        assert lookups() == before + 1, "an unknown id is remembered briefly"
    finally:
        await pool.close()
