"""The on-call page in headless Chromium: sign in, an emergency appears live, the ack button acknowledges it; its
values are live and agree with the wall's, recently resolved alerts survive a reload, and the wall's banner keeps a
resolved emergency until someone acknowledges it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from playwright.async_api import Browser, Page, expect

from tests.browser.pages import ARTIFACTS, PHONE, TIMEOUT_MS, night_settings
from tests.conftest import RunningServer, create_key, start_server
from tests.helpers import STOCK_RULES, stock

ACKED_BY_NIGHT_DUTY = re.compile(r"^已确认：night-duty · \d\d:\d\d:\d\d$")
"""Who acknowledged, and when (on the wall clock, in the campaign's zone)."""
PRODUCT_RULES = STOCK_RULES.replace('zh: "{sku}：剩余', 'zh: "{product}：剩余').replace(
    '{en: "{sku}: {value} left', '{en: "{product}: {value} left'
)


@dataclass
class Night:
    """A server on a night that is on now, judged by ``PRODUCT_RULES``: its on-call page on a phone, its wall on a
    screen of its own (a tab of its own context, never behind), an HTTP client and the keys."""

    server: RunningServer
    page: Page
    wall: Page
    http: httpx.AsyncClient
    ingest: str
    screen: str
    operator: str

    async def send(self, event_id: str, quantity: int) -> None:
        """One stock count of SKU-1001, accepted."""
        response = await self.http.post(
            "/v1/events", json={"events": [stock(event_id, quantity)]}, headers={"X-API-Key": self.ingest}
        )
        assert response.status_code == 202


@asynccontextmanager
async def night_on_call(dsn: str, tmp_path: Path, browser: Browser) -> AsyncIterator[Night]:
    """The night, its pages closed and its server stopped after; no page may raise an error meanwhile."""
    ingest, screen = await create_key(dsn, "ingest"), await create_key(dsn, "screen")
    operator = await create_key(dsn, "operator", name="night-duty")
    server = start_server(dsn, **night_settings(tmp_path, PRODUCT_RULES))
    context = await browser.new_context(viewport=PHONE, locale="zh-CN")
    wall_context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    page, wall = await context.new_page(), await wall_context.new_page()
    errors: list[str] = []
    for opened in (page, wall):
        opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            yield Night(server, page, wall, http, ingest, screen, operator)
        assert errors == []
    finally:
        await context.close()
        await wall_context.close()
        server.stop()


async def test_emergency_appears_live_and_the_ack_button_acknowledges_it(dsn, tmp_path, browser: Browser):
    ingest, operator = await create_key(dsn, "ingest"), await create_key(dsn, "operator", name="night-duty")
    server = start_server(dsn, **night_settings(tmp_path))
    context = await browser.new_context(viewport=PHONE, locale="zh-CN")
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        await page.goto(f"{server.url}/oncall")
        await page.fill("#key", operator)
        await page.click("#login button[type=submit]")
        await expect(page.locator("#login")).to_be_hidden()
        await expect(page.locator("#status")).to_have_text("实时", timeout=TIMEOUT_MS)

        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await http.post("/v1/events", json={"events": [stock("s1", 0)]}, headers={"X-API-Key": ingest})
            card = page.locator("#list-emergency li.alert")
            await expect(card).to_have_count(1, timeout=TIMEOUT_MS)
            await expect(card.locator(".summary")).to_have_text("SKU-1001：剩余 0（紧急）")
            await expect(card.locator(".runbook")).to_contain_text("立即补货")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "oncall-zh.png"), full_page=True)

            await card.locator("button.ack").click()
            await expect(card.locator(".ack-by")).to_have_text(ACKED_BY_NIGHT_DUTY, timeout=TIMEOUT_MS)
            await expect(card.locator("button.ack")).to_have_count(0)
            alerts = (await http.get("/v1/alerts", headers={"X-API-Key": operator})).json()
            assert alerts[0]["acknowledged"]["by"] == "night-duty"

            await page.click("#lang")
            await expect(card.locator(".summary")).to_have_text("SKU-1001: 0 left (Emergency)")
            await page.screenshot(path=str(ARTIFACTS / "oncall-en.png"), full_page=True)

            await http.post("/v1/events", json={"events": [stock("s2", 5000)]}, headers={"X-API-Key": ingest})
            await expect(page.locator("#list-emergency li.alert")).to_have_count(0, timeout=TIMEOUT_MS)
            await expect(page.locator("#list-resolved li.alert")).to_have_count(1)
        assert errors == []
    finally:
        await context.close()
        server.stop()


async def test_screen_token_is_view_only_and_catches_up_after_a_restart(dsn, tmp_path, browser: Browser):
    ingest, screen = await create_key(dsn, "ingest"), await create_key(dsn, "screen")
    env = night_settings(tmp_path)
    server = start_server(dsn, **env)
    port = server.port
    context = await browser.new_context(viewport=PHONE, locale="en-US")
    page = await context.new_page()
    try:
        await page.goto(f"{server.url}/oncall?token={screen}&lang=en")
        await expect(page.locator("#status")).to_have_text("Live", timeout=TIMEOUT_MS)
        server.stop()
        await expect(page.locator("#status")).to_have_text("Reconnecting…", timeout=TIMEOUT_MS)
        server = start_server(dsn, port=port, **env)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await http.post("/v1/events", json={"events": [stock("s1", 100)]}, headers={"X-API-Key": ingest})
        card = page.locator("#list-warning li.alert")
        await expect(card).to_have_count(1, timeout=30_000)
        await expect(card.locator("button")).to_have_count(0)
        await expect(page.locator("#notice")).to_contain_text("View only")
    finally:
        await context.close()
        server.stop()


async def test_live_values_agree_with_the_wall_and_the_banner_waits_for_an_acknowledgment(
    dsn, tmp_path: Path, browser: Browser
):
    async with night_on_call(dsn, tmp_path, browser) as night:
        server, page, wall, http, send = night.server, night.page, night.wall, night.http, night.send
        screen, operator = night.screen, night.operator
        await page.goto(f"{server.url}/oncall?token={screen}&lang=zh")
        await wall.goto(f"{server.url}/wall/double11-demo?token={screen}&lang=zh")
        await expect(page.locator("#status")).to_have_text("实时", timeout=TIMEOUT_MS)
        await send("s1", 100)
        card = page.locator("#list-warning li.alert")
        await expect(card.locator(".value-now")).to_have_text("100", timeout=TIMEOUT_MS)
        await expect(card.locator(".value-fired")).to_have_text("100")
        await expect(card.locator(".age")).to_have_text(re.compile(r"^\d+秒$|^\d+分\d\d秒$"))

        await send("s2", 50)
        await expect(card.locator(".value-now")).to_have_text("50", timeout=TIMEOUT_MS)
        await expect(card.locator(".value-fired")).to_have_text("100")  # the value when it fired stays
        await expect(card.locator(".values")).to_have_text("当前 50 · 触发时 100")
        await expect(card.locator(".summary")).to_have_text("极光X1手机 (SKU-1001)：剩余 50（警告）")
        row = wall.locator("#alerts-body .alert")
        await expect(row.locator(".alert-summary")).to_have_text(
            "极光X1手机 (SKU-1001)：剩余 50（警告） · 触发时 100", timeout=TIMEOUT_MS
        )
        await expect(row.locator(".alert-ack")).to_have_text("未确认")

        await send("s3", 0)
        banner = wall.locator("#alert-banner .banner-item")
        await expect(banner).to_have_count(1, timeout=TIMEOUT_MS)
        await send("s4", 5000)
        done = page.locator("#list-resolved li.alert")
        await expect(done).to_have_count(1, timeout=TIMEOUT_MS)
        await expect(done.locator(".lasted")).to_have_text(re.compile(r"^\d+秒$"))
        lasted = await done.locator(".lasted").text_content()
        await asyncio.sleep(2)
        await expect(done.locator(".lasted")).to_have_text(lasted or "")  # how long it lasted, not growing
        await expect(wall.locator("#alerts-body .alert")).to_have_count(0, timeout=TIMEOUT_MS)
        await expect(banner).to_have_count(1)
        await expect(banner.locator(".banner-state")).to_have_text("已恢复，待确认")
        await expect(banner.locator(".banner-text")).to_have_text("极光X1手机 (SKU-1001)：剩余 5,000（已恢复）")
        await expect(banner).to_have_attribute("data-status", "resolved")

        await page.reload()
        await expect(page.locator("#list-resolved li.alert")).to_have_count(1, timeout=TIMEOUT_MS)
        await expect(page.locator("#list-resolved .summary")).to_have_text(
            "极光X1手机 (SKU-1001)：剩余 5,000（已恢复）"
        )
        await expect(page.locator("#list-resolved .lasted")).to_have_text(lasted or "")

        [alert] = (await http.get("/v1/alerts", params={"status": "resolved"}, headers={"X-API-Key": screen})).json()
        acked = await http.post(f"/v1/alerts/{alert['id']}/ack", json={}, headers={"X-API-Key": operator})
        assert acked.status_code == 200
        await expect(banner.locator(".banner-state")).to_have_text(
            re.compile(r"^已确认：night-duty \d\d:\d\d:\d\d$"), timeout=TIMEOUT_MS
        )
        await expect(page.locator("#list-resolved .ack-by")).to_have_text(ACKED_BY_NIGHT_DUTY)
        ARTIFACTS.mkdir(exist_ok=True)
        await wall.screenshot(path=str(ARTIFACTS / "wall-banner-acknowledged-zh.png"))


async def test_a_resolved_emergency_nobody_acknowledged_keeps_its_ack_button_until_someone_does(
    dsn, tmp_path: Path, browser: Browser
):
    """The wall keeps a resolved emergency on its banner until someone acknowledges it: the on-call page is where
    they do, so its card keeps an Acknowledge button, first in "Recently resolved", also after a reload."""
    async with night_on_call(dsn, tmp_path, browser) as night:
        server, page, wall, http, send = night.server, night.page, night.wall, night.http, night.send
        screen, operator = night.screen, night.operator
        await wall.goto(f"{server.url}/wall/double11-demo?token={screen}&lang=zh")
        await page.goto(f"{server.url}/oncall?lang=zh")
        await page.fill("#key", operator)
        await page.click("#login button[type=submit]")
        await expect(page.locator("#status")).to_have_text("实时", timeout=TIMEOUT_MS)
        await send("s1", 0)
        await expect(page.locator("#list-emergency li.alert")).to_have_count(1, timeout=TIMEOUT_MS)
        await send("s2", 5000)
        done = page.locator("#list-resolved li.alert")
        await expect(done).to_have_count(1, timeout=TIMEOUT_MS)
        await expect(done).to_have_class(re.compile(r"\bawaiting\b"))
        await expect(done.locator(".awaiting-note")).to_contain_text("已恢复，待确认")
        await expect(done.locator("button.ack")).to_have_count(1)
        await expect(done.locator("button.silence")).to_have_count(0)  # nothing firing to silence

        await page.reload()
        await expect(page.locator("#status")).to_have_text("实时", timeout=TIMEOUT_MS)
        await expect(done.locator("button.ack")).to_have_count(1, timeout=TIMEOUT_MS)
        banner = wall.locator("#alert-banner .banner-item")
        await expect(banner.locator(".banner-state")).to_have_text("已恢复，待确认", timeout=TIMEOUT_MS)

        await done.locator("button.ack").click()
        await expect(done.locator(".ack-by")).to_have_text(ACKED_BY_NIGHT_DUTY, timeout=TIMEOUT_MS)
        await expect(done.locator("button.ack")).to_have_count(0)
        await expect(done.locator(".awaiting-note")).to_have_count(0)
        await expect(banner.locator(".banner-state")).to_have_text(
            re.compile(r"^已确认：night-duty \d\d:\d\d:\d\d$"), timeout=TIMEOUT_MS
        )
        [alert] = (await http.get("/v1/alerts", params={"status": "resolved"}, headers={"X-API-Key": operator})).json()
        assert alert["ack_by"] == "night-duty"
