"""Browser hardening: security headers on every page, and pages that work under their own CSP
(the Dash wall rendering live data, Swagger UI, the on-call page) with zero policy violations."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, Page, expect

from tests.browser.pages import CAMPAIGN, UPDATE_TIMEOUT_MS, VIEWPORT, paid_order, post, tile, wall_event
from tests.conftest import RunningServer, create_key, start_server

COLLECT_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`);
});
"""


async def watched_page(browser: Browser) -> tuple[Page, list[str]]:
    """A fresh page that records CSP violations (in the page) and console errors."""
    context = await browser.new_context(viewport=VIEWPORT)
    await context.add_init_script(COLLECT_VIOLATIONS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, errors


async def violations(page: Page) -> list[str]:
    return await page.evaluate("window.cspViolations")


def assert_hardened(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "'unsafe-eval'" not in csp, csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_pages_carry_the_security_headers(dsn, server: RunningServer):
    screen = await create_key(dsn, "screen")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for path, params in (("/wall/x", {"token": screen}), ("/wall/x", {}), ("/oncall", {}), ("/docs", {})):
            response = await http.get(path, params=params)
            assert response.headers["content-type"].startswith("text/html"), path
            assert_hardened(response)
        for path in ("/healthz", "/openapi.json", "/oncall/oncall.js", "/docs/swagger-ui-bundle.js"):
            response = await http.get(path)
            assert response.status_code == 200 and response.headers["x-content-type-options"] == "nosniff", path


async def test_the_wall_renders_live_data_with_no_csp_violation(dsn, wall_env, browser: Browser):
    ingest, screen = await create_key(dsn, "ingest"), await create_key(dsn, "screen")
    server = start_server(dsn, **wall_env)
    page, errors = await watched_page(browser)
    try:
        await page.goto(f"{server.url}/wall/{CAMPAIGN}?token={screen}&lang=en")
        await expect(page.locator("html")).to_have_attribute("data-wall", "live", timeout=UPDATE_TIMEOUT_MS)
        await post(server, ingest, [*paid_order(1), wall_event("stock_level", sku="SKU-2", quantity=0)])
        await expect(tile(page, "orders_paid")).to_have_text("1", timeout=UPDATE_TIMEOUT_MS)
        curve = page.locator("#gmv-curve .scatterlayer .trace")  # this year, target pace, last year, alert marks
        await expect(curve).to_have_count(4, timeout=UPDATE_TIMEOUT_MS)
        await expect(page.locator(".banner")).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
        assert await violations(page) == [] and errors == []
    finally:
        await page.context.close()
        server.stop()


async def test_the_api_docs_render_offline_with_no_csp_violation(server: RunningServer, browser: Browser):
    page, errors = await watched_page(browser)
    try:
        await page.goto(f"{server.url}/docs")
        await expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
        await expect(page.locator(".opblock-summary-path", has_text="/v1/events").first).to_be_visible()
        assert await violations(page) == [] and errors == []
    finally:
        await page.context.close()
