"""Supervised long-running loops: restarted after any error, watched for stalls, reported.

Every loop a server runs for its whole life (the metrics tail, checkpoints, alert evaluation, delivery,
the LISTEN connection, ingest writers) runs under a ``Supervisor``. An exception ends one run of the
loop, never the loop: it is logged with the loop's name (with its traceback unless it only says the
database is away) and the loop starts again after an exponential backoff with jitter. Each loop calls
the ``progress`` callback it is given whenever it has done a unit of work; a loop is

- ``dead`` from a failure until it makes progress again,
- ``stalled`` when it made no progress for longer than its ``stall_after_s`` while it had work
  waiting (its ``backlog`` probe says so; without a probe, a loop is expected to progress always),
- ``running`` otherwise.

``/readyz`` answers 503 while any loop is dead or stalled; ``/metrics`` has a gauge per loop. The
decisions (``backoff_delay``, ``condition``) are pure and take the time as an argument.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Literal

from app.core.database import database_unavailable
from app.core.telemetry import LOOP_PROGRESS_AGE, LOOP_RESTARTS, LOOP_STALLED, LOOP_UP

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 5.0
"""A loop failing again and again waits up to this long between runs: short enough that recovery
after an outage is quick, long enough not to spin."""
STALL_AFTER_S = 30.0
WATCH_EVERY_S = 1.0
"""How often the watchdog re-assesses every loop (gauges, a log line when a loop stalls)."""
BACKLOG_PROBE_TIMEOUT_S = 2.0

Condition = Literal["running", "dead", "stalled"]
Progress = Callable[[], None]
LoopFactory = Callable[[Progress], Coroutine[None, None, None]]
Backlog = Callable[[], Awaitable[bool]]


def backoff_delay(failures: int, jitter: float, first: float = BACKOFF_FIRST_S, cap: float = BACKOFF_MAX_S) -> float:
    """Seconds to wait before running a loop again after its ``failures``-th failure in a row.

    Doubles from ``first`` up to ``cap``; ``jitter`` (0–1) spreads the second half of it, so loops that
    fail together (a database outage) do not retry in lockstep.
    """
    ceiling = min(cap, first * 2 ** max(0, failures - 1))
    return ceiling / 2 + ceiling / 2 * jitter


@dataclass
class LoopState:
    """What is known about one supervised loop (times are the supervisor's monotonic clock)."""

    name: str
    stall_after_s: float
    last_progress: float
    failures: int = 0
    """Failures since the loop last made progress."""
    restarts: int = 0
    failed_at: float | None = None
    last_error: str | None = None
    finished: bool = False
    stalled: bool = False


def condition(state: LoopState, now: float, backlog: bool) -> Condition:
    """Dead from a failure until the loop progresses again; stalled when it has work (``backlog``) and
    made no progress for longer than its ``stall_after_s``."""
    if state.failed_at is not None and state.failed_at >= state.last_progress:
        return "dead"
    if backlog and now - state.last_progress > state.stall_after_s:
        return "stalled"
    return "running"


class Supervisor:
    """Runs named loops for one server process and knows how each one is doing."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, jitter: Callable[[], float] = random.random
    ) -> None:
        self.clock = clock
        self.jitter = jitter
        self.loops: dict[str, LoopState] = {}
        self._backlogs: dict[str, Backlog] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._watchdog: asyncio.Task[None] | None = None

    def start(
        self, name: str, factory: LoopFactory, *, stall_after_s: float = STALL_AFTER_S, backlog: Backlog | None = None
    ) -> asyncio.Task[None]:
        """Run ``factory(progress)`` as the loop ``name`` until it returns or the task is cancelled."""
        state = self.loops[name] = LoopState(name, stall_after_s, self.clock())
        if backlog is not None:
            self._backlogs[name] = backlog
        else:
            self._backlogs.pop(name, None)
        LOOP_UP.labels(loop=name).set(1)
        LOOP_STALLED.labels(loop=name).set(0)
        task = self._tasks[name] = asyncio.create_task(self._supervise(state, factory), name=name)
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.create_task(self._watch(), name="loop-watchdog")
        return task

    async def stop(self, *names: str) -> None:
        """Cancel the named loops (every loop if none is named) and wait for them to end."""
        tasks = [self._tasks.pop(name) for name in (names or list(self._tasks)) if name in self._tasks]
        for name in names or list(self.loops):
            self.loops.pop(name, None)
            self._backlogs.pop(name, None)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not self._tasks and self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None

    async def _supervise(self, state: LoopState, factory: LoopFactory) -> None:
        def progress() -> None:
            state.last_progress = self.clock()
            state.failures = 0

        while True:
            try:
                await factory(progress)
                state.finished = True
                log.info("loop %s finished", state.name)
                return
            except Exception as exc:  # any error ends this run of the loop, never the loop
                state.failures += 1
                state.restarts += 1
                state.failed_at = self.clock()
                state.last_error = f"{type(exc).__name__}: {exc}"
                LOOP_RESTARTS.labels(loop=state.name).inc()
                LOOP_UP.labels(loop=state.name).set(0)
                delay = backoff_delay(state.failures, self.jitter())
                if database_unavailable(exc):
                    log.warning("loop %s: database unavailable (%r); restarting in %.2f s", state.name, exc, delay)
                else:
                    log.error("loop %s failed; restarting in %.2f s", state.name, delay, exc_info=exc)
            await asyncio.sleep(delay)

    async def check(self) -> dict[str, Condition]:
        """Every live loop's condition now (asking the backlog probes of loops past their stall time),
        with the gauges updated and a log line for each loop that has just stalled."""
        now = self.clock()
        conditions: dict[str, Condition] = {}
        for name, state in list(self.loops.items()):
            if state.finished:
                continue
            backlog = False
            if now - state.last_progress > state.stall_after_s:
                backlog = await self._has_backlog(name)
            conditions[name] = found = condition(state, now, backlog)
            if found == "stalled" and not state.stalled:
                log.error("loop %s stalled: no progress for %.0f s with work waiting", name, now - state.last_progress)
            elif found != "stalled" and state.stalled:
                log.warning("loop %s is no longer stalled", name)
            state.stalled = found == "stalled"
            LOOP_UP.labels(loop=name).set(1 if found == "running" else 0)
            LOOP_STALLED.labels(loop=name).set(1 if state.stalled else 0)
            LOOP_PROGRESS_AGE.labels(loop=name).set(now - state.last_progress)
        return conditions

    async def _has_backlog(self, name: str) -> bool:
        probe = self._backlogs.get(name)
        if probe is None:
            return True
        try:
            async with asyncio.timeout(BACKLOG_PROBE_TIMEOUT_S):
                return await probe()
        except Exception as exc:  # unknown backlog (the database is away, say): not evidence of a stall
            log.debug("backlog of loop %s unknown: %r", name, exc)
            return False

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            try:
                await self.check()
            except Exception:
                log.exception("loop watchdog failed; checking again in %.0f s", WATCH_EVERY_S)
