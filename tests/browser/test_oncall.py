"""The on-call page in headless Chromium: sign in, an emergency appears live, the ack button acknowledges it."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, expect

from tests.browser.pages import ARTIFACTS, PHONE, TIMEOUT_MS, oncall_settings
from tests.conftest import create_key, start_server
from tests.helpers import stock


async def test_emergency_appears_live_and_the_ack_button_acknowledges_it(dsn, tmp_path, browser: Browser):
    ingest, operator = await create_key(dsn, "ingest"), await create_key(dsn, "operator", name="night-duty")
    server = start_server(dsn, **oncall_settings(tmp_path))
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
            await expect(card.locator(".ack-by")).to_have_text("已确认：night-duty", timeout=TIMEOUT_MS)
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
    env = oncall_settings(tmp_path)
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
