"""The wall display in a real browser (headless Chromium) against the real server on the embedded database.

Screenshots (1920×1080, zh and en) are saved to test-artifacts/.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from playwright.async_api import Browser, Page, expect

from tests.browser.pages import (
    ARTIFACTS,
    CAMPAIGN,
    UPDATE_TIMEOUT_MS,
    VIEWPORT,
    paid_order,
    post,
    tile,
    wall_event,
)
from tests.conftest import RunningServer, create_key, start_server

RECOVERY_TIMEOUT_MS = 90_000
"""After a restart Dash reconnects within seconds; after a long outage the watchdog reloads once the server is back."""
OUTAGE_S = 240


async def open_wall(browser: Browser, server: RunningServer, screen: str, lang: str) -> tuple[Page, list[str]]:
    """The wall in a fresh browser profile, live, with console errors collected."""
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{server.url}/wall/{CAMPAIGN}?token={screen}&lang={lang}")
    await expect(page.locator("html")).to_have_attribute("data-wall", "live", timeout=UPDATE_TIMEOUT_MS)
    return page, errors


async def screenshot(page: Page, name: str) -> None:
    """Save the page once the GMV curve (plotly.js loads after the numbers) has drawn its three lines (and the
    alert markers, when there are some)."""
    await expect(page.locator("#gmv-curve .scatterlayer .trace").nth(2)).to_be_attached(timeout=UPDATE_TIMEOUT_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name))


async def test_unknown_paths_answer_404_and_the_wall_needs_a_screen_key(dsn):
    ingest, screen, operator = [await create_key(dsn, s) for s in ("ingest", "screen", "operator")]
    server = start_server(dsn)
    try:
        async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": screen}) as http:
            for path in ("/v1/typo", "/typo", "/wall/x/y", "/walls"):
                assert (await http.get(path)).status_code == 404, path
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/wall/x")).status_code == 401
            assert (await http.get("/wall/x", params={"token": ingest})).status_code == 403
            assert (await http.get("/wall/x", params={"token": operator})).status_code == 403, (
                "operator keys stay out of URLs"
            )
            assert (await http.get("/wall/_dash-layout")).status_code == 401
            page = await http.get("/wall/x", params={"token": screen})
            assert page.status_code == 200 and "_dash-config" in page.text
            assert "HttpOnly" in page.headers["set-cookie"]
            assert (await http.get("/wall/_dash-layout")).status_code == 200, (
                "the kiosk cookie admits Dash's own requests"
            )
        async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": operator}) as http:
            assert (await http.get("/wall/")).status_code == 200
        origin = server.url
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/wall/_dash-ws-callback", origin=origin):
                pass
    finally:
        server.stop()
    allowed = start_server(dsn, WARROOM_WALL_ALLOW="127.0.0.0/8")
    try:
        async with httpx.AsyncClient(base_url=allowed.url) as http:
            assert (await http.get("/wall/x")).status_code == 200
            assert (await http.get("/v1/typo")).status_code == 404
    finally:
        allowed.stop()


async def test_the_wall_updates_live_and_an_emergency_shows_a_banner_until_acknowledged(dsn, wall_env, browser):
    ingest, screen, operator = [await create_key(dsn, s) for s in ("ingest", "screen", "operator")]
    server = start_server(dsn, **wall_env)
    try:
        page, errors = await open_wall(browser, server, screen, "en")
        await expect(page.locator("#wall-title")).to_have_text("Wall Test Night")
        await expect(page.locator("#wall-phase")).to_have_text("Burst")
        await page.evaluate("window.notReloaded = true")

        events = [wall_event("visit", anonymous_id=f"a-{i}") for i in range(20)]
        events += [wall_event("product_view", user_id=f"u-{i}", sku="SKU-1") for i in range(10)]
        events += [wall_event("add_to_cart", user_id=f"u-{i}", sku="SKU-1") for i in range(5)]
        events += [*paid_order(1), *paid_order(2)]
        events += [
            wall_event("stock_level", sku="SKU-1", quantity=50),
            wall_event("stock_level", sku="SKU-2", quantity=8),
        ]
        await post(server, ingest, events)

        await expect(tile(page, "orders_paid")).to_have_text("2", timeout=UPDATE_TIMEOUT_MS)
        await expect(tile(page, "gmv_paid")).to_have_text("¥200", timeout=UPDATE_TIMEOUT_MS)
        await expect(page.locator('[data-stage="visit"]')).to_have_attribute(
            "data-count", "20", timeout=UPDATE_TIMEOUT_MS
        )
        await expect(page.locator('[data-stage="add_to_cart"] .stage-rate')).to_have_text("50.0%")
        await expect(page.locator('.sku-row[data-sku="SKU-1"]')).to_have_attribute(
            "data-on-hand", "50", timeout=UPDATE_TIMEOUT_MS
        )
        await expect(page.locator(".banner")).to_be_hidden()
        await screenshot(page, "wall-en.png")

        await post(server, ingest, [wall_event("stock_level", sku="SKU-2", quantity=0)])
        banner = page.locator(".banner")
        await expect(banner).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
        await expect(banner).to_contain_text("SKU-2 is out of stock")
        await expect(page.locator(".alert.emergency")).to_contain_text("SKU-2 is out of stock")
        await expect(page.locator('.sku-row.sold-out[data-sku="SKU-2"]')).to_contain_text("Charger")
        zh_page, zh_errors = await open_wall(browser, server, screen, "zh")
        await expect(zh_page.locator(".banner")).to_contain_text("SKU-2 已断货", timeout=UPDATE_TIMEOUT_MS)
        await expect(tile(zh_page, "orders_paid")).to_have_text("2")
        await screenshot(zh_page, "wall-zh.png")

        async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": operator}) as http:
            alerts = (await http.get("/v1/alerts")).json()
            (alert,) = [a for a in alerts if a["severity"] == "emergency"]
            assert (
                await http.post(f"/v1/alerts/{alert['id']}/ack", json={"comment": "replenishing"})
            ).status_code == 200
        await expect(banner).to_be_hidden(timeout=UPDATE_TIMEOUT_MS)
        await expect(zh_page.locator(".banner")).to_be_hidden(timeout=UPDATE_TIMEOUT_MS)
        await expect(page.locator(".alert.emergency .alert-ack")).to_have_text("acknowledged")
        await expect(page.locator("#wall-notice")).to_have_text("")
        await post(
            server, ingest, [wall_event("order_paid", order_id="o-usd", user_id="u-9", amount=30, currency="USD")]
        )
        await expect(page.locator("#wall-notice")).to_have_text(
            "▲ no USD rate: $30 (1 events) not in GMV", timeout=UPDATE_TIMEOUT_MS
        )
        await expect(zh_page.locator("#wall-notice")).to_contain_text("USD无汇率", timeout=UPDATE_TIMEOUT_MS)
        await expect(tile(page, "gmv_paid")).to_have_text("¥200"), "never added to GMV as is"
        assert await page.evaluate("window.notReloaded") is True, "the page must update without a reload"
        assert errors == [] and zh_errors == []
    finally:
        server.stop()


async def _recovers(dsn: str, wall_env: dict[str, str], browser: Browser, outage_s: float) -> None:
    ingest, screen = [await create_key(dsn, s) for s in ("ingest", "screen")]
    server = start_server(dsn, **wall_env)
    port = server.port
    try:
        page, _ = await open_wall(browser, server, screen, "en")
        await post(server, ingest, paid_order(1))
        await expect(tile(page, "orders_paid")).to_have_text("1", timeout=UPDATE_TIMEOUT_MS)
        server.stop()
        await expect(page.locator("html")).to_have_attribute("data-wall", "stale", timeout=UPDATE_TIMEOUT_MS)
        await expect(page.locator("#stale-label")).to_be_visible()
        await asyncio.sleep(outage_s)
        server = start_server(dsn, port=port, **wall_env)
        await post(server, ingest, paid_order(2))
        await expect(tile(page, "orders_paid")).to_have_text("2", timeout=RECOVERY_TIMEOUT_MS)
        await expect(page.locator("html")).to_have_attribute("data-wall", "live", timeout=UPDATE_TIMEOUT_MS)
    finally:
        server.stop()


async def test_the_wall_recovers_by_itself_after_a_server_restart(dsn, wall_env, browser):
    await _recovers(dsn, wall_env, browser, 0)


@pytest.mark.four_minute_outage
@pytest.mark.timeout(OUTAGE_S + 180)
async def test_the_wall_recovers_by_itself_after_a_four_minute_outage(dsn, wall_env, browser):
    await _recovers(dsn, wall_env, browser, OUTAGE_S)
