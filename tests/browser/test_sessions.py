"""On-call sessions: the key is exchanged once for an HttpOnly cookie; the page never keeps it; revoking the
key or the session's expiry ends it; a cookie alone cannot change anything from another site."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import websockets
from playwright.async_api import Browser, expect

from app.access import keys
from app.core.settings import DEFAULT_KEY_CACHE_S
from tests.browser.pages import PHONE, TIMEOUT_MS, night_settings
from tests.conftest import create_key, start_server, wait_until
from tests.helpers import stock

CSRF = {"X-Warroom-Request": "test"}
KEY_CACHE_S = DEFAULT_KEY_CACHE_S


async def refused_within_key_cache(http: httpx.AsyncClient, path: str) -> bool:
    """Whether ``path`` is refused now: sessions, like keys, are cached for ``WARROOM_KEY_CACHE_S``."""
    return (await http.get(path)).status_code == 401


async def sign_in(http: httpx.AsyncClient, key: str) -> httpx.Response:
    response = await http.post("/v1/sessions", json={"key": key})
    assert response.status_code == 201, response.text
    return response


async def test_the_page_signs_in_once_keeps_no_key_and_acknowledges_through_the_cookie(dsn, tmp_path, browser: Browser):
    ingest, operator = await create_key(dsn, "ingest"), await create_key(dsn, "operator", name="night-duty")
    server = start_server(dsn, **night_settings(tmp_path))
    context = await browser.new_context(viewport=PHONE, locale="en-US")
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        await page.goto(f"{server.url}/oncall?lang=en")
        await page.fill("#key", operator)
        await page.click("#login button[type=submit]")
        await expect(page.locator("#login")).to_be_hidden()
        await expect(page.locator("#status")).to_have_text("Live", timeout=TIMEOUT_MS)
        await page.reload()
        await expect(page.locator("#status")).to_have_text("Live", timeout=TIMEOUT_MS)
        await expect(page.locator("#login")).to_be_hidden()

        stored = await page.evaluate(
            "JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), document.cookie])"
        )
        assert operator not in stored and "warroom_session" not in stored, (
            "the key is not in storage; the cookie is HttpOnly"
        )
        (cookie,) = [c for c in await context.cookies() if c["name"] == "warroom_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != operator
        assert cookie["expires"] > datetime.now(UTC).timestamp() + 11 * 3600

        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await http.post("/v1/events", json={"events": [stock("s1", 0)]}, headers={"X-API-Key": ingest})
            card = page.locator("#list-emergency li.alert")
            await expect(card).to_have_count(1, timeout=TIMEOUT_MS)
            await card.locator("button.ack").click()
            acked_by = re.compile(r"^Acknowledged by night-duty · \d\d:\d\d:\d\d$")  # who, and when
            await expect(card.locator(".ack-by")).to_have_text(acked_by, timeout=TIMEOUT_MS)
            await card.locator("button.silence").click()
            await expect(page.locator("#notice")).to_have_text("Silenced for 1 hour.", timeout=TIMEOUT_MS)

        await page.click("#logout")
        await expect(page.locator("#login")).to_be_visible(timeout=TIMEOUT_MS)
        assert [c for c in await context.cookies() if c["name"] == "warroom_session"] == []
        assert errors == []
    finally:
        await context.close()
        server.stop()


async def test_revoked_key_and_expired_session_are_refused(dsn, db, server):
    operator = await create_key(dsn, "operator", name="night-duty")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await sign_in(http, operator)
        assert (await http.get("/v1/alerts")).status_code == 200
        assert (await http.get("/v1/sessions/current")).json()["name"] == "night-duty"
        stored = await db.fetchval("SELECT token_sha256 FROM sessions")
        assert http.cookies["warroom_session"].encode() not in stored, "only the token's hash is stored"

        await keys.revoke(db, "night-duty")
        await wait_until(lambda: refused_within_key_cache(http, "/v1/alerts"), timeout=KEY_CACHE_S + 1)
        refused = await http.get("/v1/alerts")
        assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
        assert (await http.get("/v1/sessions/current")).json() == {"signed_in": False}

    operator = await create_key(dsn, "operator", name="day-duty")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await sign_in(http, operator)
        await db.execute(
            "UPDATE sessions SET created_at = now() - interval '13 hours', expires_at = now() - interval '1 hour'"
        )
        await wait_until(lambda: refused_within_key_cache(http, "/v1/alerts"), timeout=KEY_CACHE_S + 1)
        with_key = await http.get("/v1/alerts", headers={"X-API-Key": operator})
        assert with_key.status_code == 200, "a key in a header still works beside a dead cookie"


async def test_a_cookie_alone_changes_nothing_and_other_origins_get_no_stream(dsn, server):
    operator, screen, ingest = [await create_key(dsn, s) for s in ("operator", "screen", "ingest")]
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    silence = {"matchers": [{"name": "sku", "op": "=", "value": "SKU-1"}], "ends_at": ends, "reason": "x"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        assert (await http.post("/v1/sessions", json={"key": ingest})).status_code == 403
        assert (await http.post("/v1/sessions", json={"key": "wr_nope_nope"})).status_code == 401
        await sign_in(http, operator)
        forged = await http.post("/v1/silences", json=silence)
        assert forged.status_code == 403 and forged.json()["error"]["field"] == "X-Warroom-Request"
        assert (await http.post("/v1/silences", json=silence, headers=CSRF)).status_code == 201
        cookie = f"warroom_session={http.cookies['warroom_session']}"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await sign_in(http, screen)
        assert (await http.get("/v1/alerts")).status_code == 200
        assert (await http.post("/v1/silences", json=silence, headers=CSRF)).status_code == 403, (
            "a screen session is view only"
        )

    url = f"ws://127.0.0.1:{server.port}/v1/alerts/stream"
    async with websockets.connect(url, origin=server.url, additional_headers={"Cookie": cookie}) as socket:
        assert '"snapshot"' in await socket.recv()
    async with websockets.connect(url, origin="http://evil.example", additional_headers={"Cookie": cookie}) as socket:
        try:
            await socket.recv()
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd.code == 4403
        else:
            raise AssertionError("a cross-origin handshake must not get the stream")


async def test_the_wall_keeps_a_session_not_the_screen_key_and_revoking_the_key_ends_it(dsn, db, server):
    screen = await create_key(dsn, "screen", name="lobby")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        page = await http.get("/wall/x", params={"token": screen})
        assert page.status_code == 200 and "HttpOnly" in page.headers["set-cookie"]
        assert screen not in page.headers["set-cookie"] and http.cookies["warroom_wall_session"]
        assert (await http.get("/wall/_dash-layout")).status_code == 200
        again = await http.get("/wall/x", params={"token": screen})
        assert "set-cookie" not in again.headers, "a kiosk reloading its URL keeps its session"
        assert await db.fetchval("SELECT count(*) FROM sessions") == 1
        await keys.revoke(db, "lobby")
        await wait_until(lambda: refused_within_key_cache(http, "/wall/_dash-layout"), timeout=KEY_CACHE_S + 1)

    legacy_key = await create_key(dsn, "screen", name="old-kiosk")
    async with httpx.AsyncClient(base_url=server.url, timeout=30, cookies={"warroom_wall": legacy_key}) as http:
        moved = await http.get("/wall/x")
        assert moved.status_code == 200, "a kiosk signed in before sessions stays in"
        set_cookies = moved.headers.get_list("set-cookie")
        assert any(c.startswith("warroom_wall=;") and "Max-Age=0" in c for c in set_cookies), set_cookies
        assert any(c.startswith("warroom_wall_session=") and "Path=/wall;" in c for c in set_cookies), set_cookies
        assert (await http.get("/wall/_dash-layout")).status_code == 200, "the new session lets the kiosk in"


async def test_the_cookie_is_secure_when_people_reach_the_server_over_https(dsn):
    operator = await create_key(dsn, "operator")
    server = start_server(dsn, WARROOM_PUBLIC_URL="https://warroom.example.com", WARROOM_SESSION_HOURS="2")
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            cookie = (await sign_in(http, operator)).headers["set-cookie"]
        assert (
            "; Secure" in cookie and "Max-Age=7200" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        )
    finally:
        server.stop()
