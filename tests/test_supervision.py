"""Supervised loops: backoff, dead and stalled decisions on a fake clock, restarts after any exception."""

import asyncio
import logging

import asyncpg
import pytest

from app.core.supervision import BACKOFF_MAX_S, LoopState, Supervisor, backoff_delay, condition


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_up_to_the_cap_with_jitter_in_its_upper_half():
    assert backoff_delay(1, 0.0, first=0.2, cap=5) == pytest.approx(0.1)
    assert backoff_delay(1, 1.0, first=0.2, cap=5) == pytest.approx(0.2)
    assert backoff_delay(3, 1.0, first=0.2, cap=5) == pytest.approx(0.8)
    assert backoff_delay(30, 1.0, first=0.2, cap=5) == pytest.approx(5)
    assert backoff_delay(30, 0.0, first=0.2, cap=5) == pytest.approx(2.5)


def test_a_loop_is_dead_from_a_failure_until_it_progresses_again():
    state = LoopState("tail", stall_after_s=30, last_progress=100)
    assert condition(state, 101, backlog=True) == "running"
    state.failed_at = 102
    assert condition(state, 103, backlog=False) == "dead"
    state.last_progress = 104
    assert condition(state, 105, backlog=False) == "running"


def test_a_loop_is_stalled_only_with_work_waiting_past_its_stall_time():
    state = LoopState("tail", stall_after_s=30, last_progress=100)
    assert condition(state, 129, backlog=True) == "running"
    assert condition(state, 131, backlog=False) == "running", "idle, nothing to do: not stalled"
    assert condition(state, 131, backlog=True) == "stalled"


async def test_any_exception_restarts_the_loop_and_is_logged_with_its_name(caplog):
    supervisor = Supervisor(jitter=lambda: 0.0)
    runs: list[int] = []

    async def flaky(progress) -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress")
        if len(runs) == 2:
            raise KeyError("a bug")
        progress()
        await asyncio.Event().wait()

    with caplog.at_level(logging.WARNING, logger="app.core.supervision"):
        supervisor.start("flaky", flaky)
        for _ in range(100):
            if len(runs) == 3:
                break
            await asyncio.sleep(0.05)
    try:
        assert len(runs) == 3, "restarted after each failure"
        assert supervisor.loops["flaky"].restarts == 2
        assert (await supervisor.check()) == {"flaky": "running"}
        messages = [r.getMessage() for r in caplog.records]
        assert any("flaky" in m and "database unavailable" in m for m in messages), messages
        bug = [r for r in caplog.records if r.levelno == logging.ERROR and "flaky" in r.getMessage()]
        assert bug and bug[0].exc_info is not None, "an unexpected error is logged with its traceback"
    finally:
        await supervisor.stop()


async def test_a_failing_loop_reports_dead_and_backs_off():
    supervisor = Supervisor(jitter=lambda: 1.0)
    started: list[float] = []
    loop = asyncio.get_running_loop()

    async def broken(progress) -> None:
        started.append(loop.time())
        raise RuntimeError("always")

    supervisor.start("broken", broken)
    await asyncio.sleep(1.0)
    try:
        assert (await supervisor.check()) == {"broken": "dead"}
        gaps = [b - a for a, b in zip(started, started[1:], strict=False)]
        assert len(gaps) >= 2 and gaps[1] > gaps[0] * 1.5, gaps
        assert all(gap <= BACKOFF_MAX_S + 0.1 for gap in gaps)
        assert supervisor.loops["broken"].last_error == "RuntimeError: always"
    finally:
        await supervisor.stop()


async def test_stalled_is_asked_of_the_backlog_probe_once_past_the_stall_time():
    clock = FakeClock()
    supervisor = Supervisor(clock=clock)
    waiting = True

    async def backlog() -> bool:
        return waiting

    async def stuck(progress) -> None:
        progress()
        await asyncio.Event().wait()

    supervisor.start("stuck", stuck, stall_after_s=30, backlog=backlog)
    await asyncio.sleep(0)
    try:
        clock.now += 29
        assert (await supervisor.check()) == {"stuck": "running"}
        clock.now += 2
        assert (await supervisor.check()) == {"stuck": "stalled"}
        waiting = False
        assert (await supervisor.check()) == {"stuck": "running"}
    finally:
        await supervisor.stop()


async def test_a_loop_that_returns_is_finished_not_restarted():
    supervisor = Supervisor()
    runs: list[int] = []

    async def once(progress) -> None:
        runs.append(1)

    await supervisor.start("once", once)
    await asyncio.sleep(0.05)
    assert runs == [1]
    assert await supervisor.check() == {}
    await supervisor.stop()
