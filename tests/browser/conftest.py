"""The browser fixtures, for the tests in this directory only: the rest of the suite needs no Playwright."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from bench.chromium import CHROMIUM, HEADLESS_ARGS
from tests.browser.pages import CAMPAIGN, RULES, campaign_yaml


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium for the whole session; open a fresh context (or page) per test."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=HEADLESS_ARGS)
        yield launched
        await launched.close()


@pytest.fixture(name="wall_env")
def wall_env_fixture(tmp_path: Path) -> dict[str, str]:
    """Settings for a server with the test campaign and a stock-out emergency rule."""
    campaigns, rules = tmp_path / "campaigns", tmp_path / "rules"
    campaigns.mkdir()
    rules.mkdir()
    (campaigns / f"{CAMPAIGN}.yaml").write_text(campaign_yaml())
    (rules / "stock.yaml").write_text(RULES)
    return {"WARROOM_CAMPAIGNS_DIR": str(campaigns), "WARROOM_RULES_DIR": str(rules)}
