"""``warroom demo``: the whole product with a Double-11 night fed into it by the drill simulator.

The night is a rehearsal of the shipped campaigns' own night (``campaigns/double11-demo.yaml``: the burst at
2026-11-11T00:00+08:00), replayed at 60x on its own clock: events carry the night's time and watermarks say how
far the replay has got (``app/drill/simulate.py``), so the wall and the alerts read the night's time, not the
server's. Last year's night (``campaigns/double11-2025.yaml``) loads alongside as history. The campaigns are
used as they are shipped.

The terminal (``app.drill.console``) gets the banner once the server answers, then a line for each incident the
drill starts and each alert transition (``app.drill.watch``), above a status line that says where the night is.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import msgspec

from app.campaigns import model as campaign_model
from app.campaigns.model import Campaign
from app.core.settings import Settings
from app.drill.console import Console, incident_line
from app.drill.scenario import INCIDENTS, Incident
from app.drill.simulate import Drill, Night, Progress, Reporter, baseline_of, simulate
from app.drill.watch import Watch
from dashboard.i18n import Language

CAMPAIGNS_DIR = Path(__file__).resolve().parents[2] / "campaigns"
DEMO_CAMPAIGN = "double11-demo"
DEMO_CAMPAIGN_FILE = CAMPAIGNS_DIR / f"{DEMO_CAMPAIGN}.yaml"
DEMO_SPEED = 60.0
DEMO_SEED = 11
DEMO_MINUTES_BEFORE = 20.0
DEMO_MINUTES_AFTER = 24 * 60.0
DEMO_INCIDENTS = ("gmv_drop@4", "sellout@16", "payment_outage@28", "brushing@36", "slow_pages@42")
"""Spaced so none masks another, while the night is busy enough for each to stand out (as in the drill test)."""
DEMO_SCALE = 25.0
"""Pre-heat visits per simulated minute: the burst peaks near 3,500 events/s at 60x, within this machine's means."""
READY_TIMEOUT_S = 120.0
READY_POLL_S = 0.2


def demo_night() -> str:
    """What the demo's drill plays, for the banner printed before the server starts."""
    night = Night.of(campaign_model.load_file(DEMO_CAMPAIGN_FILE))
    lead_s = DEMO_MINUTES_BEFORE * 60 / DEMO_SPEED
    return (
        f"a rehearsal of the night of {night.date()} on its own clock, at {DEMO_SPEED:g}x ({DEMO_SPEED:g} simulated"
        f" seconds per real second):\n              pre-heat from {night.clock(-DEMO_MINUTES_BEFORE * 60)}, midnight"
        f" about {lead_s:g} s after start, while last year's night loads as history;\n              incidents"
        f" (simulated minute after midnight): {', '.join(DEMO_INCIDENTS)}"
    )


async def reset_demo_data(dsn: str, campaign: Campaign) -> None:
    """A demo starts from a clean night: the previous run's events of the demo campaigns are removed, with their
    alerts, alert transitions and notifications (alert ids derive from the night's time, so a second run's
    alerts would collide with the first's)."""
    campaigns = [campaign.id, campaign.baseline]
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            alerts = [r["id"] for r in await conn.fetch("SELECT id FROM alerts WHERE campaign = ANY($1)", campaigns)]
            await conn.execute("DELETE FROM alert_transitions WHERE alert_id = ANY($1)", alerts)
            await conn.execute("DELETE FROM notifications WHERE alert_ids && $1::text[]", alerts)
            await conn.execute("DELETE FROM notification_log WHERE told ?| $1::text[]", alerts)
            await conn.execute("DELETE FROM alerts WHERE id = ANY($1)", alerts)
            deleted = await conn.execute("DELETE FROM events WHERE campaign = ANY($1)", campaigns)
            await conn.execute("DELETE FROM metric_checkpoints")
    finally:
        await conn.close()
    if deleted != "DELETE 0" or alerts:
        print(
            f"demo: removed the previous drill's events ({deleted.split()[-1]}) and alerts ({len(alerts)})",
            file=sys.stderr,
        )


class TerminalReporter:
    """The drill's report on the demo's terminal: each incident as it starts and the drill's notes as lines above the
    status line; the status line itself (``app.drill.watch``) says how far the night has got, so the per-batch progress
    shows only once a night is all sent, and an unreachable server once, not once per retry."""

    def __init__(self, console: Console, lang: Language) -> None:
        self._console = console
        self._lang = lang
        self._unreachable = False

    def note(self, text: str) -> None:
        self._console.line(f"drill: {text}")

    def retrying(self, reason: str, delay_s: float) -> None:
        """Told once per outage (the drill retries every batch with backoff until the server answers again)."""
        if not self._unreachable:
            self._unreachable = True
            self.note(f"the server does not answer ({reason}); the drill retries until it does")

    def progress(self, progress: Progress, at: str, done: bool) -> None:
        if self._unreachable:
            self._unreachable = False
            self.note("the server answers again")
        if done:
            self._console.line(f"drill: {progress.line(f'done · {at} · ')}")

    def incident(self, incident: Incident, night: Night) -> None:
        minutes = INCIDENTS[incident.name] / 60
        self._console.line(incident_line(incident.name, night.clock(incident.start_s), minutes, self._lang))


async def wait_ready(url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Until ``url``/readyz answers 200: the server accepts connections, its database and loops are up."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(READY_POLL_S)
    raise RuntimeError(f"the server did not become ready within {timeout_s:g}s")


async def run_demo_drill(url: str, keys: dict[str, str], reporter: Reporter) -> None:
    """Define the shipped campaigns as they are and play the night into them."""
    this_year = campaign_model.load_file(DEMO_CAMPAIGN_FILE)
    headers = {"X-API-Key": keys["operator"], "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=30) as http:
        for campaign in (baseline_of(this_year, CAMPAIGNS_DIR), this_year):
            response = await http.put(
                f"{url}/v1/campaigns/{campaign.id}", content=msgspec.json.encode(campaign), headers=headers
            )
            response.raise_for_status()
    drill = Drill(
        url=url,
        key=keys["ingest"],
        speed=DEMO_SPEED,
        seed=DEMO_SEED,
        campaign=this_year.id,
        campaign_file=DEMO_CAMPAIGN_FILE,
        incidents=tuple(Incident.parse(text) for text in DEMO_INCIDENTS),
        minutes_before=DEMO_MINUTES_BEFORE,
        minutes_after=DEMO_MINUTES_AFTER,
        scale=DEMO_SCALE,
        history=True,
        no_live=False,
    )
    await simulate(drill, reporter)


@dataclass(frozen=True, slots=True)
class DemoSession:
    """What the demo's terminal plays once the server is up."""

    url: str
    keys: dict[str, str]
    console: Console
    lang: Language
    banner: str
    """Printed once the server answers: its addresses and keys work from the moment a person reads them."""
    drill: bool


async def _session(session: DemoSession) -> None:
    """The banner once the server is ready, then the status line and alerts, and the drill if asked."""
    console = session.console
    try:
        await wait_ready(session.url)
    except RuntimeError as exc:
        console.line(f"demo: {exc}; see the log above")
        return
    console.line(session.banner)
    watch = Watch(session.url, DEMO_CAMPAIGN, session.keys["screen"], session.keys["operator"], console, session.lang)
    watching = asyncio.create_task(watch.run())
    if session.drill:
        try:
            await run_demo_drill(session.url, session.keys, TerminalReporter(console, session.lang))
        except (httpx.HTTPError, RuntimeError) as exc:
            console.line(f"demo: the drill stopped: {exc}")
    await watching


def start_demo(settings: Settings, dsn: str, session: DemoSession) -> threading.Thread:
    """Clear the previous drill's night (with a drill), then, in a thread of its own, wait for the server and play the
    session while the caller runs the server."""
    if session.drill:
        asyncio.run(reset_demo_data(dsn, campaign_model.load_file(DEMO_CAMPAIGN_FILE)))
    thread = threading.Thread(target=asyncio.run, args=(_session(session),), name="demo", daemon=True)
    thread.start()
    return thread
