"""A replay is speed-independent: the demo's night sent at 60x through the real HTTP path (``warroom simulate`` into
a real server with the shipped campaigns and rules) raises the same alerts at the same night times, and reads the
same "vs last year", as the same night judged in simulated time by the pure engine, rules and lifecycle.

The same alerts: whenever one run fires an alert (rule and labels) or escalates it to a severity, the other has that
alert at that severity or above within a simulated minute. The server evaluates every 12 to 60 simulated seconds at
60x (the pure run every 10), so a severity passed through in seconds, or a resolve and re-fire seconds apart, may be
seen by one run only; a severity or an alert missing, or reached more than a minute apart, fails.

Whether each incident is caught at its right severity is ``tests/test_drill_alerts.py``'s question: this test
compares the two runs with each other, whatever the rules find.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from alerts.evaluation.lifecycle import Transition
from alerts.evaluation.severity import rank
from app.api.alerts import MAX_LIST
from app.campaigns.clock import REPLAY_LATENESS_S
from app.campaigns.model import load_file
from app.drill.demo import DEMO_CAMPAIGN, DEMO_CAMPAIGN_FILE, DEMO_INCIDENTS, DEMO_SCALE, DEMO_SEED
from app.drill.scenario import Incident
from app.drill.simulate import Drill, Night
from tests.conftest import create_key, start_server
from tests.helpers import ROOT, replay_night

SPEED = 60.0
MINUTES_BEFORE, MINUTES_AFTER = 20, 58
"""A night shortened to about 80 real seconds at 60x that still holds all five demo incidents (the last, slow pages
at minute 42, lasts 10 simulated minutes)."""
BURST_MINUTES = (2, 10, 20, 35, 50)
"""The moments of the burst (simulated minutes after midnight) at which "vs last year" is compared."""
FIRED_WITHIN_S = 60.0
GMV_WITHIN = 0.05
"""GMV vs last year may differ by 5 percentage points between the runs (the server's snapshot may have counted
part of a batch beyond its clock)."""
SAMPLE_EVERY_S = 0.25
"""Real seconds between snapshot readings of the HTTP run: 15 simulated seconds at 60x."""
NEAREST_SAMPLE_S = 60.0
DRILL_TIMEOUT_S = 200.0
SETTLE_TIMEOUT_S = 30.0
PURE_EVALUATE_EVERY_S = 10
"""The server evaluates after each metrics update, at most every 0.2 real s (12 simulated s at 60x)."""
NIGHT = Night.of(load_file(DEMO_CAMPAIGN_FILE))
BURST = NIGHT.burst.timestamp()
END = BURST + MINUTES_AFTER * 60

AlertId = tuple[str, tuple[tuple[str, str], ...]]
"""An alert: its rule and labels."""


def demo_drill() -> Drill:
    """The night ``run_over_http`` sends, for the run in simulated time."""
    return Drill(
        url="",
        key="",
        campaign=DEMO_CAMPAIGN,
        campaign_file=DEMO_CAMPAIGN_FILE,
        speed=SPEED,
        seed=DEMO_SEED,
        incidents=tuple(Incident.parse(text) for text in DEMO_INCIDENTS),
        minutes_before=MINUTES_BEFORE,
        minutes_after=MINUTES_AFTER,
        scale=DEMO_SCALE,
        history=True,
        no_live=False,
    )


def vs_last_year(totals_gmv: float, baseline_gmv: float) -> float:
    return totals_gmv / baseline_gmv - 1


async def run_over_http(dsn: str, log: Path) -> tuple[list[dict[str, Any]], list[tuple[float, float]]]:
    """The drill at 60x into a real server (its progress in ``log``); the alert transitions and the (as_of, GMV vs
    last year) readings it gave."""
    server = start_server(dsn, WARROOM_CAMPAIGNS_DIR=ROOT / "campaigns", WARROOM_RULES_DIR=ROOT / "rules")
    try:
        ingest, reader = await create_key(dsn, "ingest"), await create_key(dsn, "operator")
        command = [sys.executable, "-m", "app.cli", "simulate", "--url", server.url, "--key", ingest, "--history"]
        command += ["--speed", f"{SPEED:g}", "--seed", str(DEMO_SEED), "--scale", f"{DEMO_SCALE:g}"]
        command += ["--minutes-before", str(MINUTES_BEFORE), "--minutes-after", str(MINUTES_AFTER)]
        command += [arg for text in DEMO_INCIDENTS for arg in ("--incident", text)]
        async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": reader}, timeout=10) as http:
            with log.open("w") as output:
                process = await asyncio.create_subprocess_exec(*command, cwd=ROOT, stdout=output, stderr=output)
            try:
                readings = await read_while_running(http, process)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            assert process.returncode == 0, (await asyncio.to_thread(log.read_text))[-3000:]
            await settled(http, END)
            response = await http.get("/v1/alerts/history", params={"limit": MAX_LIST})
            assert response.status_code == 200, response.text
            transitions = response.json()
            assert len(transitions) < MAX_LIST, "more transitions than one page"
    finally:
        server.stop()
    return transitions, readings


async def read_while_running(http: httpx.AsyncClient, process: asyncio.subprocess.Process) -> list[tuple[float, float]]:
    """GMV vs last year as the wall reads it, with the snapshot's clock, every ``SAMPLE_EVERY_S`` through the burst."""
    readings: list[tuple[float, float]] = []
    deadline = time.monotonic() + DRILL_TIMEOUT_S
    while process.returncode is None:
        assert time.monotonic() < deadline, "the drill did not finish"
        snapshot = (await http.get(f"/v1/campaigns/{DEMO_CAMPAIGN}/snapshot")).json()
        baseline = snapshot.get("baseline")
        if snapshot["phase"] == "burst" and baseline and baseline["gmv_paid"]:
            as_of = datetime.fromisoformat(snapshot["as_of"]).timestamp()
            readings.append((as_of, vs_last_year(snapshot["totals"]["gmv_paid"], baseline["gmv_paid"])))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), SAMPLE_EVERY_S)
    return readings


async def settled(http: httpx.AsyncClient, end: float) -> None:
    """Wait until the server's clock of the night reaches its end (the last watermark less the lateness) and the
    rules have been evaluated there."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        snapshot = (await http.get(f"/v1/campaigns/{DEMO_CAMPAIGN}/snapshot")).json()
        if datetime.fromisoformat(snapshot["as_of"]).timestamp() >= end - REPLAY_LATENESS_S:
            break
        assert time.monotonic() < deadline, f"the server's clock stands at {snapshot['as_of']}"
        await asyncio.sleep(0.1)
    reached = time.time()
    while True:
        rules = (await http.get("/v1/rules")).json()["rules"]
        if rules and all((rule["last_evaluated_at"] or 0) > reached for rule in rules):
            return
        assert time.monotonic() < deadline, "the rules were not evaluated at the end of the night"
        await asyncio.sleep(0.1)


@dataclass
class NightAlerts:
    """One run's alerts in night time: when each alert (rule and labels) reached each severity (fired or escalated),
    and its spells: from when to when it stood at which severity."""

    reached: list[tuple[AlertId, str, float]] = field(default_factory=list)
    spells: dict[AlertId, list[tuple[float, float, str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, transitions: list[tuple[AlertId, str, str, float]]) -> NightAlerts:
        alerts = cls()
        for alert, kind, severity, at in transitions:
            spells = alerts.spells.setdefault(alert, [])
            if kind in ("firing", "escalated"):
                alerts.reached.append((alert, severity, at))
            if kind != "firing" and spells and spells[-1][1] == math.inf:
                spells[-1] = (spells[-1][0], at, spells[-1][2])
            if kind != "resolved":
                spells.append((at, math.inf, severity))
        return alerts

    def shows(self, alert: AlertId, severity: str, at: float) -> bool:
        """Whether this run had ``alert`` at ``severity`` or above within ``FIRED_WITHIN_S`` of ``at``: a brief
        resolve and re-fire, or a severity passed through in seconds, is seen or not depending on when the rules
        are evaluated, a severity reached a minute apart is not."""
        return any(
            rank(standing) >= rank(severity) and start <= at + FIRED_WITHIN_S and at - FIRED_WITHIN_S <= end
            for start, end, standing in self.spells.get(alert, [])
        )

    def brief(self, alert: AlertId, at: float) -> bool:
        """Whether the spell that began at ``at`` ended within ``FIRED_WITHIN_S``: an alert up for less than the
        tolerance is seen or not depending on when the rules are evaluated (the server's cadence at 60x is 12 to
        60 simulated seconds), so the other run need not have it."""
        return any(start == at and end - start < FIRED_WITHIN_S for start, end, _ in self.spells.get(alert, []))

    def told(self, alert: AlertId) -> list[str]:
        """The alert's spells as night times, e.g. ``00:16:29-00:26:10 emergency`` (``-…`` while still firing)."""
        return [
            f"{night_time(start)}-{night_time(end) if end < math.inf else '…'} {severity}"
            for start, end, severity in self.spells.get(alert, [])
        ]


def from_http(rows: list[dict[str, Any]]) -> list[tuple[AlertId, str, str, float]]:
    return [
        (
            (row["rule"], tuple(sorted(row["labels"].items()))),
            row["kind"],
            row["severity"],
            datetime.fromisoformat(row["at"]).timestamp(),
        )
        for row in rows
    ]


def from_pure(transitions: list[Transition]) -> list[tuple[AlertId, str, str, float]]:
    return [((t.alert.rule, tuple(sorted(t.alert.labels.items()))), t.kind, str(t.severity), t.at) for t in transitions]


def night_time(at: float) -> str:
    return NIGHT.clock(at - BURST)


async def test_a_replay_at_60x_over_http_gives_the_alerts_and_comparisons_of_the_night_in_simulated_time(dsn, tmp_path):
    rows, readings = await run_over_http(dsn, tmp_path / "simulate.log")
    moments: dict[int, tuple[float, float]] = {}
    for minute in BURST_MINUTES:
        target = BURST + minute * 60
        as_of, ratio = min(readings, key=lambda reading: abs(reading[0] - target))
        assert abs(as_of - target) <= NEAREST_SAMPLE_S, f"no reading near 00:{minute:02d}: {readings[-3:]}"
        moments[minute] = (as_of, ratio)
    pure = replay_night(demo_drill(), [as_of for as_of, _ in moments.values()], PURE_EVALUATE_EVERY_S)

    over_http, in_simulated_time = NightAlerts.of(from_http(rows)), NightAlerts.of(from_pure(pure.transitions))
    assert in_simulated_time.reached, "the night in simulated time raised no alert: nothing to compare"
    unmatched = [
        (alert, severity, night_time(at), f"only {where}")
        for run, other, where in ((over_http, in_simulated_time, "over HTTP"), (in_simulated_time, over_http, "pure"))
        for alert, severity, at in run.reached
        if at < END - FIRED_WITHIN_S and not other.shows(alert, severity, at) and not run.brief(alert, at)
    ]
    told = {alert: (over_http.told(alert), in_simulated_time.told(alert)) for alert, *_ in unmatched}
    assert not unmatched, (unmatched, told)

    gaps = {}
    for as_of, ratio in moments.values():
        snapshot = pure.snapshots[as_of]
        assert snapshot.baseline is not None
        expected = vs_last_year(snapshot.totals.gmv_paid, snapshot.baseline.gmv_paid)
        gaps[night_time(as_of)] = (round(ratio * 100, 1), round(expected * 100, 1))
    assert all(abs(http - simulated) <= GMV_WITHIN * 100 for http, simulated in gaps.values()), gaps
