"""``warroom demo``: the whole product with a Double-11 night fed into it by the drill simulator.

The night is a rehearsal of the shipped campaigns' own night (``campaigns/double11-demo.yaml``: the burst at
2026-11-11T00:00+08:00), replayed at 60x on its own clock: events carry the night's time and watermarks say how
far the replay has got (``app/drill/simulate.py``), so the wall and the alerts read the night's time, not the
server's. Last year's night (``campaigns/double11-2025.yaml``) loads alongside as history. The campaigns are
used as they are shipped.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from pathlib import Path

import asyncpg
import httpx
import msgspec

from app.campaigns import model as campaign_model
from app.campaigns.model import Campaign
from app.core.settings import Settings
from app.drill.scenario import Incident
from app.drill.simulate import Drill, Night, baseline_of, simulate

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
    this_year = campaign_model.load_file(DEMO_CAMPAIGN_FILE)
    headers = {"X-API-Key": keys["operator"], "Content-Type": "application/json"}
    for campaign in (baseline_of(this_year, CAMPAIGNS_DIR), this_year):
        httpx.put(
            f"{url}/v1/campaigns/{campaign.id}", content=msgspec.json.encode(campaign), headers=headers
        ).raise_for_status()
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
    asyncio.run(simulate(drill))


def start_demo_drill(settings: Settings, dsn: str, keys: dict[str, str]) -> threading.Thread:
    """Clear the previous drill's night, then (once the server is up) define the shipped campaigns as they are
    and run the night."""
    asyncio.run(reset_demo_data(dsn, campaign_model.load_file(DEMO_CAMPAIGN_FILE)))
    thread = threading.Thread(target=_demo_drill, args=(settings, keys), name="drill", daemon=True)
    thread.start()
    return thread
