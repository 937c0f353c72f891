"""Take docs/wall.png: run `warroom demo` (drill included) in a scratch data directory, then photograph the wall
at 1920×1080 when the night's clock (the wall's header) reaches a given moment, however fast this machine replays.

Usage: .venv/bin/python docs/wall_screenshot.py [night's time, default 00:29:30] [zh|en]
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.async_api import async_playwright

from app.campaigns.model import load_file
from app.core.quantities import calendar_date
from app.drill.demo import DEMO_CAMPAIGN_FILE
from bench.chromium import CHROMIUM, HEADLESS_ARGS

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "wall.png"
DEFAULT_MOMENT = "00:29:30"
"""Half a minute after the payment outage (00:28 of the night) begins: the burst, last year's comparison, the
per-minute drop and an emergency are all on screen."""
MOMENT_TIMEOUT_MS = 600_000
SETTLE_S = 2.0
"""After the moment, time for the charts' next push."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _night_day(lang: str) -> str:
    """The date of the demo's burst in its own time zone, as the wall's header shows it (2026年11月11日, 2026-11-11)."""
    campaign = load_file(DEMO_CAMPAIGN_FILE)
    day = campaign.phases.burst.start.astimezone(ZoneInfo(campaign.timezone or "UTC")).date()
    return calendar_date(day.year, day.month, day.day, lang)


async def _photograph(url: str, moment: str, lang: str) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=HEADLESS_ARGS)
        page = await browser.new_page(viewport={"width": 1920, "height": 1080})
        await page.goto(url)
        # Before the drill's first watermark the wall runs on the server's clock: wait for the night's date too.
        await page.wait_for_function(
            "([day, moment]) => { const text = (id) => (document.getElementById(id) || {}).textContent || '';"
            " return text('wall-zone').startsWith(day) && text('wall-clock') >= moment; }",
            arg=[_night_day(lang), moment],
            timeout=MOMENT_TIMEOUT_MS,
            polling=200,
        )
        await asyncio.sleep(SETTLE_S)
        await page.screenshot(path=str(OUTPUT), animations="disabled")
        await browser.close()


def main() -> None:
    moment = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_MOMENT
    lang = sys.argv[2] if len(sys.argv) > 2 else "zh"
    port = _free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "WARROOM_DATA_DIR": data, "WARROOM_PORT": str(port), "WARROOM_LOG_LEVEL": "warning"}
        env.pop("DATABASE_URL", None)
        demo = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "demo"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert demo.stdout is not None
            line = ""
            while "/wall/" not in line:
                line = demo.stdout.readline()
                if not line and demo.poll() is not None:
                    raise SystemExit("warroom demo stopped before printing the wall URL")
            url = re.search(r"(http://\S+/wall/\S+)", line).group(1) + f"&lang={lang}"  # type: ignore[union-attr]
            time.sleep(5)
            asyncio.run(_photograph(url, moment, lang))
            print(f"saved {OUTPUT}")
        finally:
            demo.send_signal(signal.SIGTERM)
            demo.wait(60)


if __name__ == "__main__":
    main()
