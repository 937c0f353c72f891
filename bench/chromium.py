"""The headless Chromium that every browser-driven check launches: the wall bench, the browser tests, the README's
screenshot. Debian's package (``make browser`` installs it); Playwright drives it without downloading its own."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
HEADLESS_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
"""No sandbox (containers run as root), no GPU, nothing fetched in the background while a page is measured."""
