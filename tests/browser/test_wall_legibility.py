"""The wall read from the back of the room, measured in a real browser: in zh and en, at 1366×768, 1920×1080 and
3840×2160, during the burst and with an emergency showing, every visible text node (the charts' SVG text
included) is at least its size rule scaled to the viewport, and none overflows or is cut by its panel.

Rules at 1920×1080, scaled by min(width / 1920, height / 1080): KPI numerals ≥ 64 px, rows of the inventory,
channel, funnel and alert panels ≥ 28 px, nothing below 24 px. One server, one browser, one page per language,
resized between resolutions. Screenshots of every case go to test-artifacts/legibility/ (printed).
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.pages import ARTIFACTS, UPDATE_TIMEOUT_MS, night_settings, post
from tests.conftest import RunningServer, create_key, event, start_server
from tests.helpers import STOCK_RULES, live_campaigns

CAMPAIGN = "double11-demo"
RESOLUTIONS = ((1366, 768), (1920, 1080), (3840, 2160))
LANGUAGES = ("zh", "en")
REFERENCE = (1920, 1080)
KPI_PX, ROW_PX, MIN_PX = 64.0, 28.0, 24.0
TOLERANCE_PX = 0.05
CHART_TIMEOUT_MS = 30_000
"""plotly.js loads after the numbers: on a loaded two-core machine that took more than 10 s."""
SHOT_TIMEOUT_MS = 120_000
"""A 4K screenshot on a busy two-core machine takes a while."""
BURST_MINUTES = 40
"""Minutes of orders before now: the per-minute panel and the night's curve have a shape to draw."""
SHOTS = ARTIFACTS / "legibility"
ROWS = (
    ".sku-row:not(.sku-head) > div, .sku-row:not(.sku-head) .stock span, .channel-row > div, .stage-name, "
    ".stage-count, .stage-rate, .alert-severity, .alert-summary, .alert-age, .more"
)
CHANNELS = ("tmall", "jd", "douyin", "app", "web", "miniprogram")
SKUS = [f"SKU-10{n:02d}" for n in range(1, 13)]
BASELINE = "double11-2025"
LAST_YEAR_BURST = datetime(2025, 11, 10, 16, tzinfo=UTC)
"""Last year's burst began at midnight in Shanghai (campaigns/double11-2025.yaml)."""
_ids = itertools.count()

MEASURE = """
([rows]) => {
  const scaleOf = (el) => {
    const graph = el.closest('.graph');
    return graph ? graph.getBoundingClientRect().width / graph.offsetWidth : 1;
  };
  const hasText = (el) => [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  const shown = (el) => {
    if (el.closest('#js-plotly-tester, .heartbeat')) return false;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) return false;
    const style = getComputedStyle(el);
    return style.visibility !== 'hidden' && style.display !== 'none';
  };
  const container = (el) => el.closest('.graph-frame, .panel, .kpi, .wall-header, .banner') || document.body;
  const inside = (box, outer) => box.left >= outer.left - 1 && box.right <= outer.right + 1
    && box.top >= outer.top - 1 && box.bottom <= outer.bottom + 1;
  const texts = [...document.querySelectorAll('body *')].filter((el) => hasText(el) && shown(el));
  const rowSet = new Set(document.querySelectorAll(rows));
  const items = texts.map((el) => {
    const box = el.getBoundingClientRect();
    return {
      text: el.textContent.trim().slice(0, 48),
      where: (el.closest('[id]') || {}).id || el.tagName,
      px: parseFloat(getComputedStyle(el).fontSize) * scaleOf(el),
      row: rowSet.has(el) || [...rowSet].some((r) => r.contains(el)),
      kpi: !!el.closest('.kpi-value'),
      svg: el instanceof SVGElement,
      outside: !inside(box, container(el).getBoundingClientRect()),
      overflow: !(el instanceof SVGElement) && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1,
    };
  });
  const boxes = [...document.querySelectorAll('.panel, .kpi, .wall-header, .banner:not(.hidden)')].map((el) => ({
    where: el.id || el.className,
    overflow: el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1,
    size: `${el.scrollWidth}×${el.scrollHeight} in ${el.clientWidth}×${el.clientHeight}`,
  }));
  return {items, boxes, root: parseFloat(getComputedStyle(document.documentElement).fontSize)};
}
"""


def _id(prefix: str) -> str:
    return f"legible-{prefix}-{next(_ids)}"


def burst_events(now: datetime) -> list[dict[str, Any]]:
    """A busy night so far: visits, views, carts and paid orders every minute on six channels, stock for a dozen
    SKUs (some under their safety stock: warnings)."""
    events: list[dict[str, Any]] = []
    for minute in range(BURST_MINUTES, 0, -1):
        at = (now - timedelta(minutes=minute)).isoformat()
        for n in range(6 + minute % 7):
            channel, sku = CHANNELS[n % len(CHANNELS)], SKUS[n % len(SKUS)]
            user, order = f"u-{minute}-{n}", _id("o")
            common = {"campaign": CAMPAIGN, "channel": channel, "occurred_at": at}
            events += [
                event(_id("v"), "visit", anonymous_id=f"a-{minute}-{n}", **common),
                event(_id("v"), "visit", anonymous_id=f"b-{minute}-{n}", **common),
                event(_id("p"), "product_view", user_id=user, sku=sku, **common),
                event(_id("c"), "add_to_cart", user_id=user, sku=sku, **common),
                event(_id("o"), "order_created", user_id=user, order_id=order, amount=1299 + 37 * n, **common),
                event(_id("o"), "order_paid", user_id=user, order_id=order, amount=1299 + 37 * n, **common),
            ]
    events += [
        event(_id("s"), "stock_level", campaign=CAMPAIGN, sku=sku, quantity=quantity)
        for sku, quantity in zip(SKUS, (40, 900, 250, 1800, 75, 3000, 420, 60, 5000, 210, 35, 1500), strict=True)
    ]
    return events + last_year(now)


def last_year(now: datetime) -> list[dict[str, Any]]:
    """The same minutes of last year's night (``live_campaigns`` put this year's burst an hour before now), with
    fewer carts, orders and payments: every funnel stage then carries its "last year" line, as in the demo."""
    events: list[dict[str, Any]] = []
    for minute in range(BURST_MINUTES, 0, -1):
        at = (LAST_YEAR_BURST + timedelta(hours=1, minutes=-minute)).isoformat()
        for n in range(6):
            user, order = f"ly-{minute}-{n}", _id("ly-o")
            common = {"campaign": BASELINE, "channel": CHANNELS[n], "occurred_at": at}
            events += [
                event(_id("ly-v"), "visit", anonymous_id=f"ly-a-{minute}-{n}", **common),
                event(_id("ly-v"), "visit", anonymous_id=f"ly-b-{minute}-{n}", **common),
                event(_id("ly-p"), "product_view", user_id=user, sku=SKUS[n], **common),
            ]
            if n < 4:
                events.append(event(_id("ly-c"), "add_to_cart", user_id=user, sku=SKUS[n], **common))
            if n < 3:
                paid = {"user_id": user, "order_id": order, "amount": 1199, **common}
                events += [event(_id("ly-o"), "order_created", **paid), event(_id("ly-o"), "order_paid", **paid)]
    return events


async def measure(page: Page, name: str, width: int, height: int) -> list[str]:
    """The rule breaks on ``page`` at this size (empty when it is legible), after saving its screenshot."""
    await page.set_viewport_size({"width": width, "height": height})
    await page.wait_for_timeout(600)
    await page.screenshot(
        path=str(SHOTS / f"{name}-{width}x{height}.png"), animations="disabled", timeout=SHOT_TIMEOUT_MS
    )
    found = await page.evaluate(MEASURE, [ROWS])
    scale = min(width / REFERENCE[0], height / REFERENCE[1])
    problems = []
    if abs(found["root"] - 16 * scale) > TOLERANCE_PX:
        problems.append(f"root font {found['root']} px, expected {16 * scale:.2f}")
    for item in found["items"]:
        least = KPI_PX if item["kpi"] else ROW_PX if item["row"] else MIN_PX
        if item["px"] < least * scale - TOLERANCE_PX:
            problems.append(f"{item['px']:.1f} px < {least * scale:.1f}: {item['text']!r} in #{item['where']}")
        if item["outside"]:
            problems.append(f"outside its panel: {item['text']!r} in #{item['where']}")
        if item["overflow"]:
            problems.append(f"overflows its box: {item['text']!r} in #{item['where']}")
    problems += [f"content cut: {box['where']} ({box['size']})" for box in found["boxes"] if box["overflow"]]
    svg = [item for item in found["items"] if item["svg"]]
    if len(svg) < 10:
        problems.append(f"only {len(svg)} chart texts measured: the charts did not draw")
    return [f"{name} {width}×{height}: {p}" for p in problems]


async def open_wall(browser: Browser, server: RunningServer, screen: str, lang: str, errors: list[str]) -> Page:
    """The wall, live, its charts drawn; console errors (a Patch plotly.js refused, say) collect in ``errors``."""
    page = await browser.new_page(viewport={"width": REFERENCE[0], "height": REFERENCE[1]})
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{server.url}/wall/{CAMPAIGN}?token={screen}&lang={lang}")
    await expect(page.locator("html")).to_have_attribute("data-wall", "live", timeout=UPDATE_TIMEOUT_MS)
    await expect(page.locator("#gmv-curve .scatterlayer .trace").nth(1)).to_be_attached(timeout=CHART_TIMEOUT_MS)
    await expect(page.locator("#minute-curve .barlayer .trace")).to_have_count(1, timeout=CHART_TIMEOUT_MS)
    await expect(page.locator(".more").first).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
    return page


@pytest.mark.timeout(600)
async def test_the_wall_is_legible_and_uncut_at_three_resolutions_in_both_languages(dsn, browser, tmp_path: Path):
    env = night_settings(tmp_path, STOCK_RULES)
    ingest, screen = [await create_key(dsn, scope) for scope in ("ingest", "screen")]
    server = start_server(dsn, **env)
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"wall screenshots: {SHOTS}")
    pages: dict[str, Page] = {}
    try:
        await post(server, ingest, burst_events(datetime.now(UTC)))
        errors: list[str] = []
        for lang in LANGUAGES:
            pages[lang] = await open_wall(browser, server, screen, lang, errors)
        await expect(pages["en"].locator(".alert.warning").first).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
        problems: list[str] = []
        for lang, page in pages.items():
            await expect(page.locator("#wall-phase")).to_have_text("Burst" if lang == "en" else "爆发期")
            for width, height in RESOLUTIONS:
                problems += await measure(page, f"{lang}-burst", width, height)

        await post(server, ingest, [event(_id("s"), "stock_level", campaign=CAMPAIGN, sku=SKUS[0], quantity=0)])
        for lang, page in pages.items():
            await expect(page.locator(".banner")).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
            await expect(page.locator("#gmv-curve .scatterlayer .trace:last-child .point")).not_to_have_count(0)
            for width, height in RESOLUTIONS:
                problems += await measure(page, f"{lang}-emergency", width, height)
        assert not problems, "\n".join(problems)
        assert errors == []
    finally:
        for page in pages.values():
            await page.context.close()
        server.stop()


async def test_4k_is_exactly_twice_1080p(dsn, browser, tmp_path: Path):
    """Every text, the charts' included, is twice as large at 3840×2160 as at 1920×1080."""
    env = {"WARROOM_CAMPAIGNS_DIR": str(live_campaigns(tmp_path / "campaigns"))}
    ingest, screen = [await create_key(dsn, scope) for scope in ("ingest", "screen")]
    server = start_server(dsn, **env)
    opened: list[Page] = []
    try:
        await post(server, ingest, burst_events(datetime.now(UTC)))
        page = await open_wall(browser, server, screen, "en", [])
        opened.append(page)
        sizes = []
        for width, height in ((1920, 1080), (3840, 2160)):
            await page.set_viewport_size({"width": width, "height": height})
            await asyncio.sleep(0.6)
            found = await page.evaluate(MEASURE, [ROWS])
            sizes.append({(item["where"], item["text"]): item["px"] for item in found["items"]})
        common = set(sizes[0]) & set(sizes[1])
        assert len([key for key in common if key[0] in ("gmv-curve", "minute-curve")]) >= 10
        assert {key: sizes[1][key] / sizes[0][key] for key in common} == pytest.approx(
            dict.fromkeys(common, 2.0), rel=1e-4
        )
    finally:
        for page in opened:
            await page.context.close()
        server.stop()


BANNER_RULES = STOCK_RULES.replace(
    '    summary: {en: "{sku}: {value} left ({severity})", zh: "{sku}：剩余 {value}（{severity}）"}\n',
    """    summary:
      en: "{severity}: {product} has {value} units on hand (threshold {threshold})"
      zh: "{severity}：{product} 库存仅剩 {value} 件（阈值 {threshold}）"
    resolved:
      en: "Resolved: {product} stock is back to {value} units (alert threshold {threshold})"
      zh: "已恢复：{product} 库存回到 {value} 件（告警阈值 {threshold}）"
""",
)
"""The shipped stock rule's words (the longest the banner shows): four sold-out SKUs are four emergencies, and the
burst's SKUs under their safety stock fill the alert panel to its "+N more"."""
OVERLAP = """
() => {
  const banner = document.querySelector('.banner:not(.hidden)').getBoundingClientRect();
  const hasText = (el) => [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  return [...document.querySelectorAll('body *')]
    .filter((el) => hasText(el) && !el.closest('.banner, #js-plotly-tester, .heartbeat'))
    .filter((el) => {
      const box = el.getBoundingClientRect();
      return box.width > 0 && box.height > 0 && box.left < banner.right && box.right > banner.left
        && box.top < banner.bottom && box.bottom > banner.top;
    })
    .map((el) => `${el.textContent.trim().slice(0, 32)} in #${(el.closest('[id]') || {}).id}`);
}
"""


@pytest.mark.timeout(600)
async def test_four_emergencies_keep_to_the_banners_height_and_cover_no_panel(dsn, browser, tmp_path: Path):
    """Two emergencies firing and two resolved but not acknowledged: the banner names the two firing, newest first,
    says "+2 more", and covers no text of any panel at three resolutions in both languages."""
    env = night_settings(tmp_path, BANNER_RULES)
    ingest, screen = [await create_key(dsn, scope) for scope in ("ingest", "screen")]
    server = start_server(dsn, **env)
    SHOTS.mkdir(parents=True, exist_ok=True)
    pages: dict[str, Page] = {}
    try:
        await post(server, ingest, burst_events(datetime.now(UTC)))
        for sku in SKUS[:4]:
            await post(server, ingest, [event(_id("s"), "stock_level", campaign=CAMPAIGN, sku=sku, quantity=0)])
        await post(
            server,
            ingest,
            [event(_id("s"), "stock_level", campaign=CAMPAIGN, sku=sku, quantity=5000) for sku in SKUS[:2]],
        )
        errors: list[str] = []
        problems: list[str] = []
        for lang in LANGUAGES:
            page = pages[lang] = await open_wall(browser, server, screen, lang, errors)
            items = page.locator("#alert-banner .banner-item")
            await expect(items).to_have_count(2, timeout=UPDATE_TIMEOUT_MS)
            await expect(page.locator("#alert-banner .banner-more")).to_have_text(
                "+2 more" if lang == "en" else "另有 2 条", timeout=UPDATE_TIMEOUT_MS
            )
            for n in range(2):
                await expect(items.nth(n)).to_have_attribute("data-status", "firing")
            for width, height in RESOLUTIONS:
                problems += await measure(page, f"{lang}-banner", width, height)
                problems += [f"{lang}-banner {width}×{height}: covers {t}" for t in await page.evaluate(OVERLAP)]
        assert not problems, "\n".join(problems)
        assert errors == []
    finally:
        for page in pages.values():
            await page.context.close()
        server.stop()
