"""The drill simulator as an integrator: posts the scenario's events through the real HTTP API.

Simulated time runs ``speed`` times faster than real time and is mapped onto
the real clock, so ``occurred_at`` is always "now" for live events (the API
rejects the future). History (``--history``) is last year's run of the same
shape, stamped a year earlier into the baseline campaign and sent as fast as
the server takes it. Retries on 429/503 and network errors honour
``Retry-After``: the ids are deterministic, so a retry is only ever a duplicate.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec

from app.drill.scenario import Scenario, stamp

BATCH_EVENTS = 2_000
HISTORY_BATCH_EVENTS = 5_000
TICK_S = 0.1
PROGRESS_EVERY_S = 2.0
MAX_ATTEMPTS = 8
HISTORY_SHIFT = timedelta(days=364)
"""Last year's same weekday: 364 days back keeps weekly patterns aligned."""
HISTORY_GROWTH = 1.25
"""This year's drill is 25% bigger than last year's baseline."""


@dataclass
class Progress:
    """Counts reported while the simulator runs."""

    label: str
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    started: float = field(default_factory=time.monotonic)
    _last_print: float = 0.0

    def add(self, report: dict[str, Any], sent: int) -> None:
        self.sent += sent
        self.accepted += report["accepted"]
        self.duplicates += report["duplicates"]
        self.rejected += len(report["rejected"])

    def line(self, extra: str = "") -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (
            f"[{self.label}] {extra}sent {self.sent:,} · accepted {self.accepted:,} · duplicates {self.duplicates:,}"
            f" · rejected {self.rejected:,} · {self.sent / elapsed:,.0f} events/s"
        )

    def maybe_print(self, extra: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_print >= PROGRESS_EVERY_S:
            self._last_print = now
            print(self.line(extra), file=sys.stderr, flush=True)


class Poster:
    """Posts batches to ``/v1/events`` with retries; raises after ``MAX_ATTEMPTS`` failures of one batch."""

    def __init__(self, url: str, key: str) -> None:
        self._client = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            timeout=30,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def post(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        body = msgspec.json.encode({"events": events})
        delay = 0.5
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = await self._client.post("/v1/events", content=body)
            except httpx.TransportError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise
                print(f"network error ({exc}); retrying in {delay:.1f}s", file=sys.stderr)
            else:
                if response.status_code == 202:
                    return response.json()
                if response.status_code not in (429, 503) or attempt == MAX_ATTEMPTS:
                    raise RuntimeError(f"POST /v1/events answered {response.status_code}: {response.text[:300]}")
                delay = float(response.headers.get("Retry-After", delay))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)
        raise AssertionError("unreachable")


def _iso_clock(origin: datetime, speed: float) -> Callable[[float], str]:
    """Map simulated seconds (relative to the burst) onto real timestamps."""
    return lambda t: (origin + timedelta(seconds=t / speed)).isoformat()


async def send_history(
    poster: Poster, scenario: Scenario, campaign: str, burst_at: datetime, speed: float, start_s: int, end_s: int
) -> Progress:
    """Last year's run, one year earlier, as fast as the server accepts it."""
    progress = Progress(f"history {campaign}")
    to_iso = _iso_clock(burst_at - HISTORY_SHIFT, speed)
    pending: list[dict[str, Any]] = []
    for t in range(start_s, end_s):
        pending += stamp(scenario.step(t), campaign, to_iso)
        if len(pending) >= HISTORY_BATCH_EVENTS or t == end_s - 1:
            if pending:
                progress.add(await poster.post(pending), len(pending))
                pending = []
            progress.maybe_print(f"{(t - start_s) / max(end_s - start_s, 1):.0%} · ")
    progress.maybe_print("done · ", force=True)
    return progress


async def send_live(
    poster: Poster,
    scenario: Scenario,
    campaign: str,
    burst_at: datetime,
    speed: float,
    start_s: int,
    end_s: int,
    clock: Callable[[], float] = time.time,
) -> Progress:
    """The drill in (compressed) real time: each simulated second is sent once the real clock reaches it."""
    progress = Progress(f"live {campaign}")
    to_iso = _iso_clock(burst_at, speed)
    origin = burst_at.timestamp()
    t = start_s
    while t < end_s:
        now_s = min(end_s, int((clock() - origin) * speed) + 1)
        pending: list[dict[str, Any]] = []
        while t < now_s:
            pending += stamp(scenario.step(t), campaign, to_iso)
            t += 1
        for i in range(0, len(pending), BATCH_EVENTS):
            chunk = pending[i : i + BATCH_EVENTS]
            progress.add(await poster.post(chunk), len(chunk))
        minute = t / 60
        progress.maybe_print(f"T{'+' if minute >= 0 else ''}{minute:.1f} min · ")
        if t < end_s:
            await asyncio.sleep(TICK_S)
    progress.maybe_print("done · ", force=True)
    return progress


def burst_time(lead_s: float, speed: float, preheat_s: float, now: float | None = None) -> datetime:
    """When (real time) the burst starts if the pre-heat window begins ``lead_s`` seconds from now."""
    start = (time.time() if now is None else now) + lead_s
    return datetime.fromtimestamp(start + preheat_s / speed, UTC)
