"""Small helpers shared by test files (a test file never imports another one)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from alerts.notify.delivery import DeliveryService
from alerts.notify.dispatch import Flush, GroupId, LogEntry, Notice

ROOT = Path(__file__).resolve().parent.parent
STOCK_RULES = """
rules:
  - name: stock_low
    kind: static
    metric: stock_on_hand
    by: sku
    panel: inventory
    summary: {en: "{sku}: {value} left ({severity})", zh: "{sku}：剩余 {value}（{severity}）"}
    runbook: {en: replenish now, zh: 立即补货}
    conditions:
      emergency: {op: "<=", value: 0}
      warning: {op: "<", value: safety_stock}
"""
"""A rule pack of one stock rule: warning under the SKU's safety stock, emergency at zero."""


def stock(event_id: str, quantity: int, sku: str = "SKU-1001") -> dict:
    """A stock level of the demo campaign's SKU (``STOCK_RULES`` turns it into alerts)."""
    return {"event_id": event_id, "type": "stock_level", "campaign": "double11-demo", "sku": sku, "quantity": quantity}


def warroom(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The ``warroom`` command as an operator runs it, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def warroom_concurrently(*calls: tuple[str, ...], env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands at the same time (each one starts a Python process), results in call order."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda args: warroom(*args, env=env), calls))


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


class DispatchProbe:
    """Drives a running server's dispatch clock and records what the dispatcher decides at each look.

    "Nothing more is sent" is then shown without waiting: move the clock past every interval that could
    bring a message (``advance``) and check the dispatcher decided nothing. The senders only send what the
    dispatcher stored, so an empty decision and no pending notification mean nothing more can go out.
    """

    def __init__(self, delivery: DeliveryService) -> None:
        self.offset = 0.0
        self.looks: list[tuple[float, list[Flush]]] = []
        self._real_clock, plan = delivery.clock, delivery.dispatcher.plan

        def recorded(notices: list[Notice], log: Mapping[GroupId, LogEntry], now: float) -> tuple[list[Flush], Any]:
            flushes, wake = plan(notices, log, now)
            self.looks.append((now, flushes))
            return flushes, wake

        delivery.clock = lambda: self._real_clock() + self.offset
        delivery.dispatcher.plan = recorded  # type: ignore[method-assign]

    async def advance(self, seconds: float, timeout_s: float = 10.0) -> list[Flush]:
        """Move the clock ``seconds`` ahead and wait for the dispatch loop to look at that time (it looks at
        least every ``PLAN_EVERY_S``); the flushes decided from then on."""
        self.offset += seconds
        target, first = self._real_clock() + self.offset, len(self.looks)
        deadline = time.monotonic() + timeout_s
        while not any(now >= target for now, _ in self.looks[first:]):
            if time.monotonic() > deadline:
                raise TimeoutError("the dispatch loop did not look again")
            await asyncio.sleep(0.02)
        return [flush for _, flushes in self.looks[first:] for flush in flushes]
