"""Drills: ``warroom simulate`` against any server, and ``warroom demo``, which runs a whole Double-11 night.

A drill compresses the night: ``speed`` simulated seconds pass per real
second. The demo schedules copies of the shipped campaigns so that their
phases line up with the compressed clock (this year's burst starts within a
minute of launch, last year's exactly 364 days earlier), and replays this
year live while it loads last year's history through the API.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import msgspec

from app.campaigns import model as campaign_model
from app.campaigns.model import Campaign, Phase, Phases
from app.core.settings import Settings
from app.drill.scenario import Incident, Scenario
from app.drill.simulate import HISTORY_GROWTH, HISTORY_SHIFT, Poster, burst_time, send_history, send_live

CAMPAIGNS_DIR = Path(__file__).resolve().parents[2] / "campaigns"
DEMO_CAMPAIGN = "double11-demo"
DEMO_SPEED = 60.0
DEMO_SEED = 11
DEMO_MINUTES_BEFORE = 20.0
DEMO_MINUTES_AFTER = 24 * 60.0
DEMO_LEAD_S = 5.0
DEMO_INCIDENTS = ("gmv_drop@4", "sellout@16", "payment_outage@28", "brushing@36", "slow_pages@42")
"""Spaced so none masks another, while the night is busy enough for each to stand out (as in the drill test)."""
DEMO_SCALE = 25.0
"""Pre-heat visits per simulated minute: the burst peaks near 3,500 events/s at 60x, within this machine's means."""
WRAPUP_S = 2 * 3600
READY_TIMEOUT_S = 120.0


def drill_schedule(campaign: Campaign, burst_at: datetime, speed: float, before_s: float, after_s: float) -> Campaign:
    """The campaign with phases on the compressed clock: pre-heat, burst and wrap-up around ``burst_at``."""

    def real(t: float) -> datetime:
        return burst_at + timedelta(seconds=t / speed)

    return msgspec.structs.replace(
        campaign,
        phases=Phases(
            preheat=Phase(real(-before_s), real(0)),
            burst=Phase(real(0), real(after_s)),
            wrapup=Phase(real(after_s), real(after_s + WRAPUP_S)),
        ),
    )


@dataclass(frozen=True, slots=True)
class Drill:
    """One drill: the war-room it posts to, the night it plays there, and how fast."""

    url: str
    key: str
    """An ingest key of that war-room."""
    campaign: str
    """The campaign id the live events carry."""
    campaign_file: Path
    """The SKU catalog and baseline of the night."""
    speed: float
    """Simulated seconds per real second."""
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


def _scenarios(drill: Drill, campaign: Campaign) -> tuple[Scenario, Scenario]:
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


async def simulate(drill: Drill, burst_at: datetime) -> None:
    """History (if asked) and the live night run side by side, so the burst is never delayed by the history."""
    campaign = msgspec.structs.replace(campaign_model.load_file(drill.campaign_file), id=drill.campaign)
    live, history = _scenarios(drill, campaign)
    start_s, end_s = int(-drill.minutes_before * 60), int(drill.minutes_after * 60)
    if drill.history and not campaign.baseline:
        raise SystemExit("warroom: --history needs a campaign file that names its baseline")
    history_poster, live_poster = Poster(drill.url, drill.key), Poster(drill.url, drill.key)
    runs = []
    if drill.history:
        print(f"history: {campaign.baseline}, burst at {(burst_at - HISTORY_SHIFT).isoformat()}", file=sys.stderr)
        runs.append(
            send_history(history_poster, history, campaign.baseline or "", burst_at, drill.speed, start_s, end_s)
        )
    if not drill.no_live:
        print(
            f"live: {campaign.id}, burst (midnight) at {burst_at.isoformat()}, speed {drill.speed:g}x", file=sys.stderr
        )
        runs.append(send_live(live_poster, live, campaign.id, burst_at, drill.speed, start_s, end_s))
    try:
        await asyncio.gather(*runs)
    finally:
        await history_poster.close()
        await live_poster.close()


async def _reset_demo_data(dsn: str, campaign: Campaign) -> None:
    """A demo starts from a clean night: earlier drill events of the demo campaigns are removed."""
    conn = await asyncpg.connect(dsn)
    try:
        deleted = await conn.execute("DELETE FROM events WHERE campaign = ANY($1)", [campaign.id, campaign.baseline])
        await conn.execute("DELETE FROM metric_checkpoints")
    finally:
        await conn.close()
    if deleted != "DELETE 0":
        print(f"demo: removed the previous drill's events ({deleted.split()[-1]})", file=sys.stderr)


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become ready")


def _demo_drill(settings: Settings, keys: dict[str, str]) -> None:
    url = f"http://{settings.host}:{settings.port}"
    _wait_ready(url)
    before_s, after_s = DEMO_MINUTES_BEFORE * 60, DEMO_MINUTES_AFTER * 60
    burst_at = burst_time(DEMO_LEAD_S, DEMO_SPEED, before_s)
    this_year = campaign_model.load_file(CAMPAIGNS_DIR / f"{DEMO_CAMPAIGN}.yaml")
    last_year = campaign_model.load_file(CAMPAIGNS_DIR / f"{this_year.baseline}.yaml")
    headers = {"X-API-Key": keys["operator"], "Content-Type": "application/json"}
    for campaign in (
        drill_schedule(last_year, burst_at - HISTORY_SHIFT, DEMO_SPEED, before_s, after_s),
        drill_schedule(this_year, burst_at, DEMO_SPEED, before_s, after_s),
    ):
        httpx.put(
            f"{url}/v1/campaigns/{campaign.id}", content=msgspec.json.encode(campaign), headers=headers
        ).raise_for_status()
    drill = Drill(
        url=url,
        key=keys["ingest"],
        speed=DEMO_SPEED,
        seed=DEMO_SEED,
        campaign=this_year.id,
        campaign_file=CAMPAIGNS_DIR / f"{DEMO_CAMPAIGN}.yaml",
        incidents=tuple(Incident.parse(text) for text in DEMO_INCIDENTS),
        minutes_before=DEMO_MINUTES_BEFORE,
        minutes_after=DEMO_MINUTES_AFTER,
        scale=DEMO_SCALE,
        history=True,
        no_live=False,
    )
    asyncio.run(simulate(drill, burst_at))


def start_demo_drill(settings: Settings, dsn: str, keys: dict[str, str]) -> threading.Thread:
    """Clear the previous drill's events, then (once the server is up) schedule the campaigns and run the night."""
    campaign = campaign_model.load_file(CAMPAIGNS_DIR / f"{DEMO_CAMPAIGN}.yaml")
    asyncio.run(_reset_demo_data(dsn, campaign))
    thread = threading.Thread(target=_demo_drill, args=(settings, keys), name="drill", daemon=True)
    thread.start()
    return thread
