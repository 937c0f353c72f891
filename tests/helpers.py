"""Small helpers shared by test files (a test file never imports another one)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx


def wait_ready(
    url: str, timeout_s: float, alive: Callable[[], bool] = lambda: True, interval_s: float = 0.2
) -> httpx.Response | None:
    """Poll ``url``/readyz until it answers 200, ``timeout_s`` passes or ``alive()`` turns false; the last answer."""
    deadline = time.monotonic() + timeout_s
    ready = None
    while time.monotonic() < deadline and alive():
        try:
            ready = httpx.get(f"{url}/readyz", timeout=2)
            if ready.status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(interval_s)
    return ready


class FakeClock:
    """A clock tests move by hand (``clock.now += 1``): timing logic is checked without waiting."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
