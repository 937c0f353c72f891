"""The wall display in a real browser (headless Chromium) against the real server on the embedded database.

Screenshots (1920×1080, zh and en) are saved to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from playwright.async_api import Browser, Page, expect

from tests.conftest import RunningServer, create_key, event, start_server

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CAMPAIGN = "wall-test"
VIEWPORT = {"width": 1920, "height": 1080}
UPDATE_TIMEOUT_MS = 10_000
RECOVERY_TIMEOUT_MS = 90_000
"""After a restart Dash reconnects within seconds; after a long outage the watchdog reloads once the server is back."""
OUTAGE_S = 240
RULES = """
rules:
  - name: stock_out
    kind: static
    metric: stock_on_hand
    by: sku
    panel: inventory
    summary: {en: "{sku} is out of stock", zh: "{sku} 已断货"}
    runbook: {en: replenish now, zh: 立即补货}
    conditions:
      emergency: {op: "<=", value: 0}
"""
_ids = itertools.count()


def campaign_yaml() -> str:
    now = datetime.now(UTC)
    t = [(now + timedelta(hours=h)).isoformat() for h in (-2, -1, 2, 3)]
    return f"""
id: {CAMPAIGN}
name: Wall Test Night
name_zh: 大屏测试之夜
currency: CNY
phases:
  preheat: {{start: "{t[0]}", end: "{t[1]}"}}
  burst: {{start: "{t[1]}", end: "{t[2]}"}}
  wrapup: {{start: "{t[2]}", end: "{t[3]}"}}
targets: {{gmv: 100000}}
skus:
  - {{sku: SKU-1, name: Phone, name_zh: 手机, safety_stock: 2, warning_level: 5}}
  - {{sku: SKU-2, name: Charger, name_zh: 充电器, safety_stock: 1, warning_level: 2}}
"""


@pytest.fixture(name="wall_env")
def wall_env_fixture(tmp_path: Path) -> dict[str, str]:
    """Settings for a server with the test campaign and a stock-out emergency rule."""
    campaigns, rules = tmp_path / "campaigns", tmp_path / "rules"
    campaigns.mkdir()
    rules.mkdir()
    (campaigns / f"{CAMPAIGN}.yaml").write_text(campaign_yaml())
    (rules / "stock.yaml").write_text(RULES)
    return {"WARROOM_CAMPAIGNS_DIR": str(campaigns), "WARROOM_RULES_DIR": str(rules)}


def wall_event(type_: str, **fields: Any) -> dict[str, Any]:
    return event(f"wall-{next(_ids)}", type_, campaign=CAMPAIGN, channel="tmall", **fields)


async def post(server: RunningServer, ingest: str, events: list[dict[str, Any]]) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": ingest}, timeout=30) as http:
        response = await http.post("/v1/events", json={"events": events})
        assert response.status_code == 202, response.text


def paid_order(n: int) -> list[dict[str, Any]]:
    order = f"o-{next(_ids)}"
    return [
        wall_event("order_created", order_id=order, user_id=f"u-{n}", amount=100),
        wall_event("order_paid", order_id=order, user_id=f"u-{n}", amount=100),
    ]


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


def tile(page: Page, kpi: str) -> Any:
    return page.locator(f'[data-kpi="{kpi}"] .kpi-value')


async def screenshot(page: Page, name: str) -> None:
    """Save the page once the GMV curve (plotly.js loads after the numbers) has drawn its three lines."""
    await expect(page.locator("#gmv-curve .scatterlayer .trace")).to_have_count(3, timeout=UPDATE_TIMEOUT_MS)
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
        await expect(page.locator(".stock-list.sold-out")).to_contain_text("Charger")
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
