"""Real JavaScript SDKs (npm packages pinned in tests/sdk/package.json) posting to the Segment-compatible endpoints.

``make sdks`` installs them; the ``sdk_modules`` fixture does too when they are missing, so ``pytest`` alone works.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import asyncio
import pytest

SDK_DIR = Path(__file__).resolve().parent / "sdk"
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
        capture_output=True, text=True, timeout=NODE_TIMEOUT_S, cwd=SDK_DIR,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"sent": RUDDER_EVENTS, "failed": 0}, result.stderr[-2000:]
    assert await db.fetchval("SELECT count(*) FROM events") == RUDDER_EVENTS
    assert await db.fetchval("SELECT count(DISTINCT event_id) FROM events WHERE type = 'product_view'") == RUDDER_EVENTS
