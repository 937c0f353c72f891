"""``warroom demo`` (the whole product with demo keys and a drill feeding it) and ``warroom simulate`` (a drill
posting a Double-11 night to any war-room)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import asyncpg

from app.access import keys
from app.cli.connection import on_connection, open_database
from app.cli.serve import serve
from app.core.settings import Settings
from app.drill.demo import (
    DEMO_CAMPAIGN,
    DEMO_CAMPAIGN_FILE,
    DEMO_MINUTES_AFTER,
    DEMO_MINUTES_BEFORE,
    DEMO_SCALE,
    DEMO_SEED,
    DEMO_SPEED,
    demo_night,
    start_demo_drill,
)
from app.drill.scenario import Incident
from app.drill.simulate import Drill, simulate

DEMO_KEY_SCOPES = ("ingest", "screen", "operator", "metrics")
SAMPLE_EVENT = {
    "event_id": "demo-1",
    "type": "order_paid",
    "order_id": "o-1",
    "amount": 199.0,
    "channel": "tmall",
    "campaign": DEMO_CAMPAIGN,
}
"""The event of the printed curl command: it names the demo's campaign, so it shows on the wall the demo prints."""


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``demo`` and ``simulate`` to the ``warroom`` commands."""
    demo_command = commands.add_parser("demo", help="run the product with demo keys and a Double-11 drill feeding it")
    demo_command.add_argument("--no-drill", action="store_true", help="only the server and keys, no simulated night")
    demo_command.set_defaults(handler=_demo)

    s = commands.add_parser("simulate", help="drill: post a Double-11 night's events to a war-room over HTTP")
    s.add_argument("--scenario", choices=["double11"], default="double11")
    s.add_argument("--url", required=True, help="the war-room, e.g. http://127.0.0.1:8000")
    s.add_argument("--key", required=True, help="an ingest key")
    s.add_argument(
        "--speed",
        type=float,
        default=DEMO_SPEED,
        help="simulated seconds per real second (default 60); 0 sends as fast as the server takes them."
        " Events carry the night's own time whatever the speed",
    )
    s.add_argument("--seed", type=int, default=DEMO_SEED)
    s.add_argument("--campaign", default=DEMO_CAMPAIGN, help="campaign id of the events")
    s.add_argument(
        "--campaign-file",
        type=Path,
        default=DEMO_CAMPAIGN_FILE,
        help="the night (its burst start is midnight), SKU catalog and baseline; with --history the baseline's own"
        " file is read from the same directory",
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
        "--history",
        action="store_true",
        help="also send last year's run into the baseline campaign, in its own night, as fast as the server takes"
        " it, alongside the live night",
    )
    s.add_argument("--no-live", action="store_true", help="with --history: stop after the history")
    s.set_defaults(handler=_simulate)


async def _fresh_demo_keys(conn: asyncpg.Connection) -> dict[str, str]:
    """Revoke the previous demo's keys and create one per scope, named demo-<scope>."""
    await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE name LIKE 'demo-%' AND revoked_at IS NULL")
    return {scope: (await keys.create(conn, f"demo-{scope}", scope))[1] for scope in DEMO_KEY_SCOPES}  # type: ignore[arg-type]


def _demo(args: argparse.Namespace, settings: Settings) -> None:
    """Start the product: embedded database, fresh demo keys, the server, and a Double-11 drill feeding it."""
    drill = not args.no_drill
    dsn = open_database(settings)
    demo_keys = on_connection(dsn, _fresh_demo_keys)
    base = f"http://{settings.host}:{settings.port}"
    token, screen = demo_keys["ingest"], demo_keys["screen"]
    print(
        f"""
Promo War-Room is starting on {base}
  wall:       {base}/wall/{DEMO_CAMPAIGN}?token={screen}   (English: &lang=en)
  on-call:    {base}/oncall   (sign in with the operator key below)
  API docs:   {base}/docs
  snapshot:   {base}/v1/campaigns/{DEMO_CAMPAIGN}/snapshot?token={screen}
  health:     {base}/readyz   metrics: {base}/metrics (Authorization: Bearer <metrics key>)
  keys:       ingest   {token}
              screen   {screen}
              operator {demo_keys["operator"]}
              metrics  {demo_keys["metrics"]}
{"  drill:      " + demo_night() if drill else ""}

Post an event:
  curl -sS {base}/v1/events -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\
    -d '{json.dumps(SAMPLE_EVENT)}'
""",
        flush=True,
    )
    if drill:
        start_demo_drill(settings, dsn, demo_keys)
    serve(settings, None, None)


def _simulate(args: argparse.Namespace, settings: Settings) -> None:
    """Check the incidents and the speed before anything is sent, then post the night."""
    try:
        incidents = tuple(Incident.parse(text) for text in args.incident)
    except ValueError as exc:
        raise SystemExit(f"warroom: {exc}") from None
    if not args.speed >= 0:
        raise SystemExit(f"warroom: --speed must be 0 (as fast as possible) or more, got {args.speed:g}")
    drill = Drill(
        url=args.url,
        key=args.key,
        campaign=args.campaign,
        campaign_file=args.campaign_file,
        speed=args.speed,
        seed=args.seed,
        incidents=incidents,
        minutes_before=args.minutes_before,
        minutes_after=args.minutes_after,
        scale=args.scale,
        history=args.history,
        no_live=args.no_live,
    )
    asyncio.run(simulate(drill))
