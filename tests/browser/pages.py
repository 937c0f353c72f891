"""What the browser tests share about the pages they open: the wall's test campaign and events, the on-call
page's settings, viewports and timeouts."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page

from tests.conftest import RunningServer, event
from tests.helpers import STOCK_RULES, live_campaigns

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CAMPAIGN = "wall-test"
VIEWPORT = {"width": 1920, "height": 1080}
UPDATE_TIMEOUT_MS = 10_000
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


def tile(page: Page, kpi: str) -> Any:
    return page.locator(f'[data-kpi="{kpi}"] .kpi-value')


PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 10_000


def night_settings(tmp_path: Path, pack: str = STOCK_RULES) -> dict[str, str]:
    """A server's settings for a night on now (``live_campaigns``) judged by the rule ``pack`` (YAML text)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "pack.yaml").write_text(pack)
    return {"WARROOM_RULES_DIR": str(rules), "WARROOM_CAMPAIGNS_DIR": str(live_campaigns(tmp_path / "campaigns"))}
