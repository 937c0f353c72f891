"""The drill simulator as an integrator: posts the scenario's events through the real HTTP API.

Events carry the night's own time: simulated second ``t`` (relative to the burst) is the campaign's burst
start plus ``t`` seconds, whatever the speed. Pacing is separate: at ``speed`` > 0 second ``t`` goes out once
``(t - first) / speed`` real seconds have passed since the drill began; at ``speed`` 0 as fast as the server
takes it. Each batch ends with a ``watermark`` event for its campaign (how far through the night it has sent),
so the server runs the night on its own clock (``app/campaigns/clock.py``): 1x, 60x and as fast as possible
give the same numbers and the same alerts.

History (``Drill.history``) is last year's run of the same shape, stamped in the baseline campaign's own night
(the burst of its file) and sent with its watermarks as fast as the server takes it, alongside the live night:
this year is compared with last year only as far as last year has been loaded. Retries on 429/503 and network
errors honour ``Retry-After``: the ids are deterministic, so a retry is only ever a duplicate.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx
import msgspec

from app.campaigns import model as campaign_model
from app.campaigns.clock import REPLAY_LATENESS_S
from app.campaigns.model import Campaign
from app.drill.scenario import INCIDENTS, Incident, Scenario, stamp

BATCH_EVENTS = 2_000
HISTORY_BATCH_EVENTS = 5_000
TICK_S = 0.1
PROGRESS_EVERY_S = 2.0
MAX_ATTEMPTS = 8
HISTORY_GROWTH = 1.25
"""This year's drill is 25% bigger than last year's baseline."""
AS_FAST_AS_POSSIBLE = 0.0
"""The ``speed`` that sends without pacing."""


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


class Reporter(Protocol):
    """Where a drill tells how it is going: the command's stderr (``StderrReporter``) or the demo's terminal."""

    def note(self, text: str) -> None:
        """A line for the person running the drill: what is sent where, a retry."""

    def progress(self, progress: Progress, at: str, done: bool) -> None:
        """After each batch: ``at`` is how far the night has been sent on its clock; ``done``: all of it."""

    def retrying(self, reason: str, delay_s: float) -> None:
        """A batch could not reach the server (``reason``); it is sent again in ``delay_s``."""

    def incident(self, incident: Incident, night: Night) -> None:
        """A scripted incident's first events have been sent."""


class StderrReporter:
    """``warroom simulate``'s report: notes, incidents and a progress line every ``PROGRESS_EVERY_S`` on stderr."""

    def note(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def progress(self, progress: Progress, at: str, done: bool) -> None:
        progress.maybe_print(f"{'done · ' if done else ''}{at} · ", force=done)

    def retrying(self, reason: str, delay_s: float) -> None:
        self.note(f"network error ({reason}); retrying in {delay_s:.1f}s")

    def incident(self, incident: Incident, night: Night) -> None:
        self.note(
            f"incident: {incident.name} starts at {night.clock(incident.start_s)} in {night.campaign}"
            f" (lasts {INCIDENTS[incident.name] / 60:g} simulated minutes)"
        )


class Poster:
    """Posts batches to ``/v1/events`` with retries; raises after ``MAX_ATTEMPTS`` failures of one batch."""

    def __init__(self, url: str, key: str, reporter: Reporter | None = None) -> None:
        self._reporter = reporter or StderrReporter()
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
                self._reporter.retrying(str(exc), delay)
            else:
                if response.status_code == 202:
                    return response.json()
                if response.status_code not in (429, 503) or attempt == MAX_ATTEMPTS:
                    raise RuntimeError(f"POST /v1/events answered {response.status_code}: {response.text[:300]}")
                delay = float(response.headers.get("Retry-After", delay))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)
        raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class Night:
    """Where a drill's simulated seconds fall in one campaign's own time."""

    campaign: str
    burst: datetime
    """The night's midnight, simulated second 0: the campaign's burst start."""
    timezone: ZoneInfo

    @classmethod
    def of(cls, campaign: Campaign) -> Night:
        return cls(campaign.id, campaign.phases.burst.start, ZoneInfo(campaign.timezone))

    def iso(self, t: float) -> str:
        """Simulated second ``t`` as an RFC 3339 time of the night."""
        return (self.burst + timedelta(seconds=t)).isoformat()

    def clock(self, t: float) -> str:
        """Simulated second ``t`` on the night's wall clock, e.g. ``00:03:12`` (``23:41:00`` in the pre-heat)."""
        return (self.burst + timedelta(seconds=t)).astimezone(self.timezone).strftime("%H:%M:%S")

    def date(self) -> str:
        return self.burst.astimezone(self.timezone).date().isoformat()

    def watermark(self, t: int, id_prefix: str) -> dict[str, Any]:
        """The event saying everything before simulated second ``t`` has been sent; its id is deterministic, so a
        retried batch deduplicates it."""
        return {
            "event_id": f"{id_prefix}-watermark-{t}",
            "type": "watermark",
            "campaign": self.campaign,
            "occurred_at": self.iso(t),
        }


def due(first: int, elapsed_s: float, speed: float, end: int) -> int:
    """The simulated seconds before the returned one are due ``elapsed_s`` real seconds into a drill that starts at
    second ``first``: second ``t`` goes out once ``(t - first) / speed`` real seconds have passed, and at speed 0
    (``AS_FAST_AS_POSSIBLE``) every second up to ``end`` is due at once."""
    if speed <= AS_FAST_AS_POSSIBLE:
        return end
    return min(end, first + int(elapsed_s * speed) + 1)


async def send_night(
    poster: Poster,
    scenario: Scenario,
    night: Night,
    label: str,
    start_s: int,
    end_s: int,
    speed: float,
    reporter: Reporter,
    batch_events: int = BATCH_EVENTS,
    clock: Callable[[], float] = time.monotonic,
) -> Progress:
    """Simulated seconds ``start_s`` to ``end_s`` of the night, each batch ending with the night's watermark; the
    ``reporter`` hears of each batch and of each scripted incident once its first second is sent."""
    progress = Progress(f"{label} {night.campaign}")
    began = clock()
    t = start_s
    while t < end_s:
        until = due(start_s, clock() - began, speed, end_s)
        while t < until:
            first = t
            batch: list[dict[str, Any]] = []
            while t < until and len(batch) < batch_events:
                batch += stamp(scenario.step(t), night.campaign, night.iso)
                t += 1
            batch.append(night.watermark(t, scenario.id_prefix))
            progress.add(await poster.post(batch), len(batch))
            for incident in scenario.incidents:
                if first <= incident.start_s < t:
                    reporter.incident(incident, night)
            reporter.progress(progress, night.clock(t), False)
        if t < end_s:
            await asyncio.sleep(TICK_S)
    reporter.progress(progress, night.clock(t), True)
    return progress


async def send_history(
    poster: Poster, scenario: Scenario, baseline: Campaign, start_s: int, end_s: int, reporter: Reporter
) -> None:
    """Last year's night as fast as the server takes it, then a watermark at that campaign's end: the history is all
    there is of that night, so its totals are final and the projection may use them (``app/metrics/pacing.py``)."""
    night = Night.of(baseline)
    await send_night(
        poster, scenario, night, "history", start_s, end_s, AS_FAST_AS_POSSIBLE, reporter, HISTORY_BATCH_EVENTS
    )
    closing = int((baseline.end - night.burst).total_seconds() + REPLAY_LATENESS_S)
    await poster.post([night.watermark(closing, scenario.id_prefix)])


@dataclass(frozen=True, slots=True)
class Drill:
    """One drill: the war-room it posts to, the night it plays there, and how fast."""

    url: str
    key: str
    """An ingest key of that war-room."""
    campaign: str
    """The campaign id the live events carry."""
    campaign_file: Path
    """The night (its burst start is simulated second 0), SKU catalog and baseline; the baseline's own file is
    looked up next to it."""
    speed: float
    """Simulated seconds per real second; ``AS_FAST_AS_POSSIBLE`` (0) sends without pacing."""
    seed: int
    incidents: tuple[Incident, ...]
    minutes_before: float
    minutes_after: float
    scale: float
    """Pre-heat visits per simulated minute (the burst peaks at 30x)."""
    history: bool
    """Also send last year's run into the baseline campaign, alongside the live night."""
    no_live: bool
    """With ``history``: stop after the history."""


def scenarios(drill: Drill, campaign: Campaign) -> tuple[Scenario, Scenario]:
    """This year's night (with the drill's incidents) and last year's (quiet, smaller) for ``campaign``."""
    before_s = drill.minutes_before * 60
    live = Scenario(campaign.id, campaign.skus, drill.seed, drill.scale, drill.incidents, before_s, f"sim{drill.seed}")
    history = Scenario(
        campaign.baseline or "",
        campaign.skus,
        drill.seed + 1,
        drill.scale / HISTORY_GROWTH,
        (),
        before_s,
        f"hist{drill.seed}",
    )
    return live, history


def baseline_of(campaign: Campaign, directory: Path) -> Campaign:
    """Last year's campaign of ``campaign`` from its own file in ``directory``: its burst is the history's midnight."""
    if not campaign.baseline:
        raise SystemExit("warroom: --history needs a campaign file that names its baseline")
    for candidate in campaign_model.load_directory(directory):
        if candidate.id == campaign.baseline:
            return candidate
    raise SystemExit(f"warroom: --history needs the baseline campaign {campaign.baseline!r} defined in {directory}")


def _pace(speed: float) -> str:
    return "as fast as the server takes it" if speed <= AS_FAST_AS_POSSIBLE else f"at {speed:g}x"


async def simulate(drill: Drill, reporter: Reporter | None = None) -> None:
    """History (if asked) and the live night run side by side, so the burst is never delayed by the history; how it
    goes is told to ``reporter`` (default: stderr)."""
    reporter = reporter or StderrReporter()
    campaign = msgspec.structs.replace(campaign_model.load_file(drill.campaign_file), id=drill.campaign)
    live, history = scenarios(drill, campaign)
    start_s, end_s = int(-drill.minutes_before * 60), int(drill.minutes_after * 60)
    baseline = baseline_of(campaign, drill.campaign_file.parent) if drill.history else None
    history_poster, live_poster = Poster(drill.url, drill.key, reporter), Poster(drill.url, drill.key, reporter)
    runs: list[Coroutine[Any, Any, object]] = []
    if baseline is not None:
        night = Night.of(baseline)
        reporter.note(f"history: {baseline.id}, the night of {night.date()} {_pace(AS_FAST_AS_POSSIBLE)}")
        runs.append(send_history(history_poster, history, baseline, start_s, end_s, reporter))
    if not drill.no_live:
        night = Night.of(campaign)
        reporter.note(
            f"live: {campaign.id}, the night of {night.date()} from {drill.minutes_before:g} simulated minutes before"
            f" midnight to {drill.minutes_after:g} after, on its own clock, {_pace(drill.speed)}"
        )
        runs.append(send_night(live_poster, live, night, "live", start_s, end_s, drill.speed, reporter))
    try:
        await asyncio.gather(*runs)
    finally:
        await history_poster.close()
        await live_poster.close()
