"""Session cookies are checked as cheaply and as throttled as keys: random cookies cannot flood the database, a
cookie-authenticated request is checked once, and the wall's kiosk session never replaces the on-call one."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from app.access.sessions import SessionStore
from app.core import telemetry
from tests.conftest import create_key, start_server
from tests.helpers import FakeClock

CSRF = {"X-Warroom-Request": "test"}
FAILURES_PER_S = 5
"""The failure limit the flood test runs with: bursts of 10 failures, then 5 per second."""


def session_lookups() -> float:
    return telemetry.SESSION_LOOKUPS._value.get()


def silence() -> dict[str, object]:
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    return {"matchers": [{"name": "sku", "op": "=", "value": "SKU-1"}], "ends_at": ends, "reason": "x"}


async def test_random_session_cookies_from_one_address_are_throttled_and_lookups_bounded(dsn):
    operator = await create_key(dsn, "operator")
    server = start_server(dsn, WARROOM_AUTH_FAILURES_PER_S=FAILURES_PER_S)
    requests = [
        ("GET", "/v1/alerts", "warroom_session"),
        ("GET", "/v1/sessions/current", "warroom_session"),
        ("GET", "/wall/_dash-layout", "warroom_wall_session"),
    ]
    try:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=30) as signed_in,
            httpx.AsyncClient(base_url=server.url, timeout=30) as flood,
        ):
            assert (await signed_in.post("/v1/sessions", json={"key": operator})).status_code == 201
            assert (await signed_in.get("/v1/alerts")).status_code == 200
            before, started = session_lookups(), time.monotonic()
            statuses: list[int] = []
            retry_after: list[int] = []
            for index in range(150):
                method, path, cookie = requests[index % len(requests)]
                token = secrets.token_urlsafe(32) if index % 5 else "not-one-of-ours"
                response = await flood.request(method, path, headers={"Cookie": f"{cookie}={token}"})
                statuses.append(response.status_code)
                if response.status_code == 429:
                    retry_after.append(int(response.headers["Retry-After"]))
            allowed = 2 * FAILURES_PER_S + FAILURES_PER_S * (time.monotonic() - started) + 1
            refused = [s for s in statuses if s != 429]
            assert len(refused) <= allowed and statuses.count(429) >= 150 - allowed, statuses
            assert session_lookups() - before <= allowed, "each throttled session check still reached the database"
            assert min(retry_after) >= 1, "every 429, the wall's refusal page's too, says when to retry"
            assert (await signed_in.get("/v1/alerts")).status_code == 200, "a session known to be live passes meanwhile"
            assert session_lookups() - before <= allowed, "a live session is cached"
    finally:
        server.stop()


async def test_a_repeated_unknown_cookie_is_looked_up_once(dsn, server):
    token = secrets.token_urlsafe(32)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, cookies={"warroom_session": token}) as http:
        before = session_lookups()
        for _ in range(3):
            assert (await http.get("/v1/alerts")).status_code == 401
        assert session_lookups() == before + 1


async def test_a_cookie_authenticated_post_costs_one_rate_limit_token(dsn, server, monkeypatch):
    operator = await create_key(dsn, "operator", rate_limit=0.5)  # a bucket of one request, refilled every 2 s
    clock = FakeClock()
    monkeypatch.setattr(server.services.limiter, "_clock", clock)  # the server's buckets on a clock the test moves
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        assert (await http.post("/v1/sessions", json={"key": operator})).status_code == 201
        assert (await http.post("/v1/silences", json=silence(), headers=CSRF)).status_code == 429, "signing in took it"
        clock.now += 2.0
        first = await http.post("/v1/silences", json=silence(), headers=CSRF)
        assert first.status_code == 201, first.text
        second = await http.post("/v1/silences", json=silence(), headers=CSRF)
        assert second.status_code == 429, "the rate limit still applies to cookie-authenticated requests"


async def test_opening_the_wall_in_the_on_call_browser_keeps_the_operator_signed_in(dsn, server):
    operator, screen = (
        await create_key(dsn, "operator", name="night-duty"),
        await create_key(dsn, "screen", name="lobby"),
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        assert (await http.post("/v1/sessions", json={"key": operator})).status_code == 201
        wall = await http.get("/wall/x", params={"token": screen})
        assert wall.status_code == 200
        assert (await http.get("/v1/sessions/current")).json()["name"] == "night-duty"
        assert (await http.post("/v1/silences", json=silence(), headers=CSRF)).status_code == 201
        (set_cookie,) = wall.headers.get_list("set-cookie")
        assert set_cookie.startswith("warroom_wall_session=") and "Path=/wall;" in set_cookie, set_cookie
        assert (await http.get("/wall/_dash-layout")).status_code == 200, "the wall reads its own cookie"


async def test_tokens_not_shaped_like_ours_never_reach_the_database(dsn):
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        store = SessionStore(pool, cache_s=2)
        before = session_lookups()
        for token in ("", "x", "a" * 42, "a" * 44, "a" * 42 + "=", "a" * 42 + "é", secrets.token_hex(32)):
            assert await store.find(token) is None
        assert session_lookups() == before
    finally:
        await pool.close()


async def test_a_kiosk_asks_the_database_about_its_session_once_per_key_cache_period(dsn, server):
    screen = await create_key(dsn, "screen")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        assert (await http.get("/wall/x", params={"token": screen})).status_code == 200
        before = session_lookups()
        for _ in range(20):
            assert (await http.get("/wall/_dash-layout")).status_code == 200
        assert session_lookups() - before <= 1


async def test_signing_out_ends_the_session_at_once(dsn, server):
    operator = await create_key(dsn, "operator")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        assert (await http.post("/v1/sessions", json={"key": operator})).status_code == 201
        copy = {"Cookie": f"warroom_session={http.cookies['warroom_session']}"}
        assert (await http.get("/v1/alerts", headers=copy)).status_code == 200  # now cached as live
        assert (await http.delete("/v1/sessions/current", headers=CSRF)).status_code == 204
        assert (await http.get("/v1/alerts", headers=copy)).status_code == 401, "a copy of the cookie is dead too"


async def test_a_dead_wall_cookie_is_cleared_so_the_kiosk_stops_counting_failures(server):
    dead = secrets.token_urlsafe(32)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as kiosk:
        refused = await kiosk.get("/wall/x", headers={"Cookie": f"warroom_wall_session={dead}"})
    assert refused.status_code == 401
    assert "warroom_wall_session=;" in refused.headers["Set-Cookie"] and "Max-Age=0" in refused.headers["Set-Cookie"]
    assert "Path=/wall" in refused.headers["Set-Cookie"]
