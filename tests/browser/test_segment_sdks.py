"""Real JavaScript SDKs (npm packages pinned in tests/sdk/package.json) posting to the Segment-compatible endpoints.

``make sdks`` installs them; the ``sdk_modules`` fixture does too when they are missing, so ``pytest`` alone works.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import create_key, free_port, start_server, wait_until

SDK_DIR = Path(__file__).resolve().parents[1] / "sdk"
NODE_TIMEOUT_S = 120
NPM_TIMEOUT_S = 300
RUDDER_EVENTS = 230


@pytest.fixture(scope="session")
def sdk_modules() -> Path:
    """tests/sdk/node_modules as package-lock.json pins it (``npm ci`` once, again only when the lock changes)."""
    installed = SDK_DIR / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < (SDK_DIR / "package-lock.json").stat().st_mtime:
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=SDK_DIR, check=True, timeout=NPM_TIMEOUT_S
        )
    return SDK_DIR / "node_modules"


async def test_rudder_sdk_node_with_its_defaults_stores_every_event_once(sdk_modules, server, ingest_key, db):
    """rudder-sdk-node 3.1.1 gzips its batches without a Content-Type (axios then sends
    application/x-www-form-urlencoded) and never retries a 4xx: the body must be read as JSON anyway."""
    result = await asyncio.to_thread(
        subprocess.run,
        ["node", str(SDK_DIR / "rudder_node.js"), server.url, ingest_key, str(RUDDER_EVENTS)],
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        cwd=SDK_DIR,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"sent": RUDDER_EVENTS, "failed": 0}, result.stderr[
        -2000:
    ]
    assert await db.fetchval("SELECT count(*) FROM events") == RUDDER_EVENTS
    assert await db.fetchval("SELECT count(DISTINCT event_id) FROM events WHERE type = 'product_view'") == RUDDER_EVENTS


@contextlib.contextmanager
def _site(directory: Path) -> Iterator[str]:
    """A shop front end on its own origin (another port), serving ``directory``."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    site = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=site.serve_forever, name="shop-page", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}"
    finally:
        site.shutdown()
        site.server_close()


@pytest.fixture
def shop_page(sdk_modules: Path) -> Iterator[str]:
    """A shop page on its own origin serving Segment's analytics.js (analytics-next)."""
    with _site(sdk_modules / "@segment" / "analytics-next" / "dist" / "umd") as url:
        yield url


SHOP_SCRIPT = """
async ([writeKey, apiHost]) => {
  const [analytics] = await window.AnalyticsNext.AnalyticsBrowser.load(
    {writeKey, cdnSettings: {integrations: {"Segment.io": {apiKey: writeKey, apiHost, protocol: "http"}}}},
    {disableClientPersistence: true, retryQueue: false},
  );
  await analytics.page("Home", {url: location.href});
  await analytics.track("Product Viewed", {sku: "SKU-9", price: 12.5});
  await analytics.track("Order Completed", {order_id: "web-1", total: 25, currency: "CNY"});
  await analytics.identify("u-web", {vip: true});
}
"""


async def test_analytics_js_in_a_browser_posts_across_origins(sdk_modules, shop_page, dsn, browser, db):
    """Segment's browser SDK on the shop's origin posts to the war-room on another one: preflight, then posts."""
    server = start_server(dsn, WARROOM_CORS_ORIGINS=f"https://shop.example, {shop_page}")
    try:
        key = await create_key(dsn, "ingest", "web-shop")
        page = await browser.new_page()
        failures: list[str] = []
        page.on("requestfailed", lambda request: failures.append(f"{request.url}: {request.failure}"))
        posts: list[Any] = []
        page.on("response", lambda response: posts.append(response) if "/v1/" in response.url else None)
        await page.goto(f"{shop_page}/")  # the SDK's own directory listing: a page on the shop's origin
        await page.add_script_tag(url=f"{shop_page}/index.js")
        await page.evaluate(SHOP_SCRIPT, [key, f"127.0.0.1:{server.port}/v1"])
        await wait_until(lambda: _count(db, 3), timeout=20)
        await page.close()
    finally:
        server.stop()
    assert failures == []
    assert sorted(r["type"] for r in await db.fetch("SELECT type FROM events")) == [
        "order_paid",
        "page_view",
        "product_view",
    ]
    assert {r.url.rsplit("/", 1)[1]: r.status for r in posts} == {"p": 200, "t": 200, "i": 200}


async def _count(db, expected: int) -> bool:
    return await db.fetchval("SELECT count(*) FROM events") >= expected


async def test_preflight_and_answers_carry_cors_headers_for_allowed_origins_only(dsn):
    shop = "https://shop.example"
    server = start_server(dsn, WARROOM_CORS_ORIGINS=shop)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            preflight = await client.options(
                "/v1/batch",
                headers={
                    "Origin": shop,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type,x-retry-count",
                },
            )
            stranger = await client.options(
                "/v1/t", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
            )
            refused = await client.post("/v1/track", json={"event": "x"}, headers={"Origin": shop})
            events = await client.options(
                "/v1/events", headers={"Origin": shop, "Access-Control-Request-Method": "POST"}
            )
    finally:
        server.stop()
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == shop
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "authorization,content-type,x-retry-count"
    assert "origin" in preflight.headers["vary"].lower()
    assert stranger.status_code == 403 and "access-control-allow-origin" not in stranger.headers
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == shop
    assert "access-control-allow-origin" not in events.headers


async def test_without_configured_origins_no_cors_headers_are_sent(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        preflight = await client.options(
            "/v1/batch", headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
        )
    assert preflight.status_code == 405 and "access-control-allow-origin" not in preflight.headers


RUDDER_SCRIPT = """
async ([writeKey, dataPlaneUrl]) => {
  const analytics = new window.rudderanalytics.RudderAnalytics();
  const sourceConfig = {source: {id: "shop", name: "shop", writeKey, workspaceId: "warroom", enabled: true,
                                 config: {}, destinations: []}};
  await new Promise((loaded) => analytics.load(writeKey, dataPlaneUrl, {
    getSourceConfig: () => sourceConfig, onLoaded: loaded, logLevel: "ERROR",
  }));
  analytics.page("Home", {url: location.href});
  analytics.track("Product Added", {sku: "SKU-3", price: 20, quantity: 2});
  analytics.track("Order Completed", {order_id: "web-2", total: 40});
}
"""


async def test_rudderstack_js_in_a_browser_posts_across_origins(sdk_modules, dsn, browser, db):
    """RudderStack's browser SDK (v3, bundled build) on the shop's origin: preflight, then its own JSON posts."""
    with _site(sdk_modules / "@rudderstack" / "analytics-js" / "dist" / "npm" / "modern" / "bundled" / "umd") as shop:
        server = start_server(dsn, WARROOM_CORS_ORIGINS=shop)
        try:
            key = await create_key(dsn, "ingest", "web-shop")
            page = await browser.new_page()
            posts: list[Any] = []
            page.on("response", lambda response: posts.append(response) if "/v1/" in response.url else None)
            await page.goto(f"{shop}/")
            await page.add_script_tag(url=f"{shop}/index.js")
            await page.evaluate(RUDDER_SCRIPT, [key, server.url])
            await wait_until(lambda: _count(db, 3), timeout=20)
            await page.close()
        finally:
            server.stop()
    assert sorted(r["type"] for r in await db.fetch("SELECT type FROM events")) == [
        "add_to_cart",
        "order_paid",
        "page_view",
    ]
    assert {r.status for r in posts} == {200}
