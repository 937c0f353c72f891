"""Take docs/wall.png: run `warroom demo` (drill included) in a scratch data directory, then photograph the wall.

Usage: .venv/bin/python docs/wall_screenshot.py [seconds into the drill, default 50] [zh|en]
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

from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "wall.png"
DEFAULT_WAIT_S = 50.0
"""The drill reaches midnight about 20 s after start and the payment outage (00:28 of the night) about 48 s after:
at 50 s the burst, last year's comparison and an emergency are all on screen."""
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _photograph(url: str, wait_s: float) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1920, "height": 1080})
        await page.goto(url)
        await asyncio.sleep(wait_s)
        await page.screenshot(path=str(OUTPUT))
        await browser.close()


def main() -> None:
    wait_s = float(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_WAIT_S
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
            asyncio.run(_photograph(url, wait_s))
            print(f"saved {OUTPUT}")
        finally:
            demo.send_signal(signal.SIGTERM)
            demo.wait(60)


if __name__ == "__main__":
    main()
