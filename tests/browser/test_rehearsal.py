"""A rehearsal in the browser: last month's night replayed into a server shows, on the on-call page and the wall,
the night's own clock, marked 演练 / REHEARSAL, never an age against today's wall clock ("25 days ago").

Screenshots (zh and en) are saved to test-artifacts/.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import httpx
from playwright.async_api import Browser, expect

from app.campaigns.clock import REPLAY_LATENESS_S
from tests.browser.pages import ARTIFACTS, PHONE, TIMEOUT_MS, VIEWPORT
from tests.conftest import create_key, start_server
from tests.helpers import REHEARSED, STOCK_RULES, live_campaigns, night_stock, rehearsed_night, stock, watermark

INTO_THE_NIGHT = timedelta(minutes=28, seconds=5)
NIGHT_TIME = "00:28:05"
TO_WRAPUP = "23:31:55"
"""The demo's burst lasts a day: at 00:28:05 the wrap-up is this far ahead."""
LIVE_AGE = re.compile(r"^\d+秒$|^1分\d\d秒$")
"""A live alert's age on the wall clock just after it fired, in the page's Chinese (a minute on a slow machine)."""


def settings(tmp_path: Path) -> dict[str, str]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "pack.yaml").write_text(STOCK_RULES)
    return {"WARROOM_RULES_DIR": str(rules), "WARROOM_CAMPAIGNS_DIR": str(live_campaigns(tmp_path / "campaigns"))}


async def test_the_oncall_page_and_the_wall_show_a_rehearsal_on_the_nights_clock(dsn, tmp_path, browser: Browser):
    env = settings(tmp_path)
    moment = rehearsed_night(Path(env["WARROOM_CAMPAIGNS_DIR"])) + INTO_THE_NIGHT
    ingest, screen = await create_key(dsn, "ingest"), await create_key(dsn, "screen")
    server = start_server(dsn, **env)
    context = await browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id="Europe/Berlin")
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        await page.goto(f"{server.url}/oncall?token={screen}")
        await expect(page.locator("#status")).to_have_text("实时", timeout=TIMEOUT_MS)
        night = [
            night_stock("night-1", 0, moment),
            watermark("mark-1", moment + timedelta(seconds=REPLAY_LATENESS_S)),
            stock("live-1", 0),
        ]
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            posted = await http.post("/v1/events", json={"events": night}, headers={"X-API-Key": ingest})
            assert posted.status_code == 202, posted.text

        cards = page.locator("#list-emergency li.alert")
        await expect(cards).to_have_count(2, timeout=TIMEOUT_MS)
        rehearsal = cards.filter(has_text=f"campaign={REHEARSED}")
        await expect(rehearsal.locator(".rehearsal")).to_have_text("演练")
        await expect(rehearsal.locator(".night-time")).to_have_text(NIGHT_TIME)
        await expect(rehearsal.locator(".meta")).to_contain_text(f"活动时间触发于 {NIGHT_TIME}")
        await expect(rehearsal.locator(".age")).to_have_count(0)
        live = cards.filter(has_text="campaign=double11-demo")
        await expect(live.locator(".rehearsal")).to_have_count(0)
        await expect(live.locator(".age")).to_have_text(LIVE_AGE)
        header = page.locator("#nights li.night")
        await expect(header).to_have_count(1)
        await expect(header).to_have_text(f"演练 演练之夜 · {NIGHT_TIME} · 爆发期 · 距收尾期 {TO_WRAPUP}")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "oncall-rehearsal-zh.png"), full_page=True)

        await page.click("#lang")
        await expect(rehearsal.locator(".rehearsal")).to_have_text("REHEARSAL")
        await expect(rehearsal.locator(".meta")).to_contain_text(f"fired at night time {NIGHT_TIME}")
        await expect(header).to_have_text(f"REHEARSAL Rehearsed Night · {NIGHT_TIME} · Burst · Wrap-up in {TO_WRAPUP}")
        await page.screenshot(path=str(ARTIFACTS / "oncall-rehearsal-en.png"), full_page=True)

        wall = await context.new_page()
        await wall.set_viewport_size(VIEWPORT)
        wall.on("pageerror", lambda error: errors.append(str(error)))
        await wall.goto(f"{server.url}/wall/{REHEARSED}?token={screen}&lang=zh")
        await expect(wall.locator("#wall-clock")).to_have_text(NIGHT_TIME, timeout=TIMEOUT_MS)
        await expect(wall.locator("#wall-phase")).to_have_text("演练 · 爆发期")
        await expect(wall.locator("#wall-zone")).to_contain_text(f"{moment.year}年{moment.month}月{moment.day}日")
        feed = wall.locator("#alerts-body .alert")
        await expect(feed).to_have_count(1)
        await expect(feed.locator(".alert-rehearsal")).to_have_text("演练")
        await expect(feed.locator(".alert-age")).to_have_text("0秒")
        await expect(wall.locator("#alert-banner .banner-rehearsal")).to_have_text("演练")
        await wall.screenshot(path=str(ARTIFACTS / "wall-rehearsal-zh.png"))
        assert errors == []
    finally:
        await context.close()
        server.stop()
