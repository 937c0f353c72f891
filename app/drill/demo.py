"""Drills: ``warroom simulate`` against any server, and ``warroom demo``, which runs a whole Double-11 night.

A drill compresses the night: ``speed`` simulated seconds pass per real
second. The demo schedules copies of the shipped campaigns so that their
phases line up with the compressed clock (this year's burst starts within a
minute of launch, last year's exactly 364 days earlier), and replays this
year live while it loads last year's history through the API.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("simulate", help="drill: post a Double-11 night's events to a war-room over HTTP")
    s.add_argument("--scenario", choices=["double11"], default="double11")
    s.add_argument("--url", required=True, help="the war-room, e.g. http://127.0.0.1:8000")
    s.add_argument("--key", required=True, help="an ingest key")
    s.add_argument("--speed", type=float, default=DEMO_SPEED, help="simulated seconds per real second (default 60)")
    s.add_argument("--seed", type=int, default=11)
    s.add_argument("--campaign", default=DEMO_CAMPAIGN, help="campaign id of the events")
    s.add_argument(
        "--campaign-file", type=Path, default=CAMPAIGNS_DIR / f"{DEMO_CAMPAIGN}.yaml", help="SKU catalog and baseline"
    )
    s.add_argument(
        "--incident",
        action="append",
        default=[],
        metavar="NAME@MINUTE",
        help="payment_outage, sellout, slow_pages, gmv_drop or brushing, at a simulated minute after midnight",
    )
    s.add_argument(
        "--minutes-before", type=float, default=DEMO_MINUTES_BEFORE, help="simulated pre-heat minutes before midnight"
    )
    s.add_argument("--minutes-after", type=float, default=DEMO_MINUTES_AFTER, help="simulated minutes after midnight")
    s.add_argument(
        "--scale", type=float, default=DEMO_SCALE, help="pre-heat visits per simulated minute (the burst peaks at 30x)"
    )
    s.add_argument(
        "--burst-at", help="real time of midnight (RFC 3339); default: right after the pre-heat window from now"
    )
    s.add_argument(
        "--history",
        action="store_true",
        help="also send last year's run into the baseline campaign, alongside the live night",
    )
    s.add_argument("--no-live", action="store_true", help="with --history: stop after the history")


def _scenarios(args: argparse.Namespace, campaign: Campaign) -> tuple[Scenario, Scenario]:
    incidents = tuple(Incident.parse(text) for text in args.incident)
    before_s = args.minutes_before * 60
    live = Scenario(campaign.id, campaign.skus, args.seed, args.scale, incidents, before_s, f"sim{args.seed}")
    history = Scenario(
        campaign.baseline or "",
        campaign.skus,
        args.seed + 1,
        args.scale / HISTORY_GROWTH,
        (),
        before_s,
        f"hist{args.seed}",
    )
    return live, history


async def simulate(args: argparse.Namespace, burst_at: datetime) -> None:
    """History (if asked) and the live night run side by side, so the burst is never delayed by the history."""
    campaign = msgspec.structs.replace(campaign_model.load_file(args.campaign_file), id=args.campaign)
    live, history = _scenarios(args, campaign)
    start_s, end_s = int(-args.minutes_before * 60), int(args.minutes_after * 60)
    if args.history and not campaign.baseline:
        raise SystemExit("warroom: --history needs a campaign file that names its baseline")
    history_poster, live_poster = Poster(args.url, args.key), Poster(args.url, args.key)
    runs = []
    if args.history:
        print(f"history: {campaign.baseline}, burst at {(burst_at - HISTORY_SHIFT).isoformat()}", file=sys.stderr)
        runs.append(
            send_history(history_poster, history, campaign.baseline or "", burst_at, args.speed, start_s, end_s)
        )
    if not args.no_live:
        print(
            f"live: {campaign.id}, burst (midnight) at {burst_at.isoformat()}, speed {args.speed:g}x", file=sys.stderr
        )
        runs.append(send_live(live_poster, live, campaign.id, burst_at, args.speed, start_s, end_s))
    try:
        await asyncio.gather(*runs)
    finally:
        await history_poster.close()
        await live_poster.close()


def simulate_command(args: argparse.Namespace) -> None:
    try:
        for text in args.incident:
            Incident.parse(text)
        burst_at = (
            msgspec.convert(args.burst_at, datetime)
            if args.burst_at
            else burst_time(0, args.speed, args.minutes_before * 60)
        )
    except (ValueError, msgspec.ValidationError) as exc:
        raise SystemExit(f"warroom: {exc}") from None
    asyncio.run(simulate(args, burst_at))


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
    args = argparse.Namespace(
        url=url,
        key=keys["ingest"],
        speed=DEMO_SPEED,
        seed=11,
        campaign=this_year.id,
        campaign_file=CAMPAIGNS_DIR / f"{DEMO_CAMPAIGN}.yaml",
        incident=list(DEMO_INCIDENTS),
        minutes_before=DEMO_MINUTES_BEFORE,
        minutes_after=DEMO_MINUTES_AFTER,
        scale=DEMO_SCALE,
        history=True,
        no_live=False,
    )
    asyncio.run(simulate(args, burst_at))


def start_demo_drill(settings: Settings, dsn: str, keys: dict[str, str]) -> threading.Thread:
    """Clear the previous drill's events, then (once the server is up) schedule the campaigns and run the night."""
    campaign = campaign_model.load_file(CAMPAIGNS_DIR / f"{DEMO_CAMPAIGN}.yaml")
    asyncio.run(_reset_demo_data(dsn, campaign))
    thread = threading.Thread(target=_demo_drill, args=(settings, keys), name="drill", daemon=True)
    thread.start()
    return thread
