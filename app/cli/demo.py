"""``warroom demo`` (the whole product with demo keys and a drill feeding it) and ``warroom simulate`` (a drill
posting a Double-11 night to any war-room)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from app.access import keys
from app.cli.connection import on_connection, open_database
from app.cli.serve import serve
from app.core.settings import Settings
from app.drill.console import Console
from app.drill.demo import (
    DEMO_CAMPAIGN,
    DEMO_CAMPAIGN_FILE,
    DEMO_MINUTES_AFTER,
    DEMO_MINUTES_BEFORE,
    DEMO_SCALE,
    DEMO_SEED,
    DEMO_SPEED,
    DemoSession,
    demo_night,
    start_demo,
)
from app.drill.scenario import Incident
from app.drill.simulate import Drill, simulate
from dashboard.i18n import LANGUAGES

DEMO_KEY_SCOPES = ("ingest", "screen", "operator", "metrics")
KEYS_FILE = "demo-keys.env"
KEYS_FILE_MODE = 0o600
KEY_VARIABLE = "WARROOM_{scope}_KEY"
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
    demo_command.add_argument(
        "--lang",
        choices=LANGUAGES,
        help="language of the terminal's status and alert lines and of the wall (default WARROOM_WALL_LANGUAGE, zh)",
    )
    demo_command.add_argument(
        "--keys",
        action="store_true",
        help=f"print the running (or last) demo's keys again, from <WARROOM_DATA_DIR>/{KEYS_FILE}, and exit",
    )
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


def keys_file(settings: Settings) -> Path:
    """Where the demo keeps its keys: in the data directory, beside the embedded database."""
    return settings.data_dir / KEYS_FILE


def write_keys(path: Path, base: str, demo_keys: dict[str, str]) -> None:
    """The keys as shell variables in a file only its owner may read (mode 0600 from its creation: a token is never
    readable by others, not even for a moment); the previous demo's file is replaced whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Promo War-Room demo keys, written by `warroom demo` at {datetime.now(UTC).isoformat(timespec='seconds')}.",
        "# The next `warroom demo` revokes them and writes new ones. Print them: warroom demo --keys",
        f"# Use them in a shell: . {path}",
        f"WARROOM_URL={base}",
        *(f"{KEY_VARIABLE.format(scope=scope.upper())}={token}" for scope, token in demo_keys.items()),
    ]
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEYS_FILE_MODE)
    with os.fdopen(descriptor, "w") as file:
        file.write("\n".join(lines) + "\n")
    os.replace(partial, path)


def read_keys(path: Path) -> tuple[str, dict[str, str]]:
    """The base URL and the keys by scope of a keys file ``write_keys`` wrote."""
    values = dict(
        line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#")
    )
    demo_keys = {scope: values[KEY_VARIABLE.format(scope=scope.upper())] for scope in DEMO_KEY_SCOPES}
    return values["WARROOM_URL"], demo_keys


def keys_text(base: str, demo_keys: dict[str, str], path: Path) -> str:
    """The keys as the banner shows them, where they are kept, how to see them again and how to make one's own."""
    token, screen = demo_keys["ingest"], demo_keys["screen"]
    return f"""  wall:       {base}/wall/{DEMO_CAMPAIGN}?token={screen}   (add &lang=en or &lang=zh)
  on-call:    {base}/oncall   (sign in with the operator key below)
  keys:       ingest   {token}
              screen   {screen}
              operator {demo_keys["operator"]}
              metrics  {demo_keys["metrics"]}
              kept in {path} (mode 0600; `. {path}` sets $WARROOM_OPERATOR_KEY…)
              print them again: warroom demo --keys
              a key of your own: warroom keys create --name NAME --scope ingest|screen|operator|metrics"""


def banner(base: str, demo_keys: dict[str, str], path: Path, drill: bool) -> str:
    """What a person needs to use the demo: its addresses, keys and a first request."""
    token, screen = demo_keys["ingest"], demo_keys["screen"]
    return f"""
Promo War-Room is running on {base}
{keys_text(base, demo_keys, path)}
  API docs:   {base}/docs
  snapshot:   {base}/v1/campaigns/{DEMO_CAMPAIGN}/snapshot?token={screen}
  health:     {base}/readyz   metrics: {base}/metrics (Authorization: Bearer <metrics key>)
{"  drill:      " + demo_night() if drill else ""}

Post an event:
  curl -sS {base}/v1/events -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\
    -d '{json.dumps(SAMPLE_EVENT)}'

Below: {"the drill's incidents and " if drill else ""}every alert as it fires or resolves; the last line is the \
night's status. Ctrl-C stops.
"""


def _demo(args: argparse.Namespace, settings: Settings) -> None:
    """Start the product: embedded database, fresh demo keys, the server, and a Double-11 drill feeding it; the
    terminal gets the banner once the server answers, then the night's news above a status line."""
    path = keys_file(settings)
    if args.keys:
        _print_keys(path)
        return
    drill = not args.no_drill
    lang = args.lang or settings.wall_language
    settings = settings.model_copy(update={"wall_language": lang})
    base = f"http://{settings.host}:{settings.port}"
    console = Console(sys.stdout)
    if console.tty and sys.stderr.isatty():
        sys.stderr = console.writer(sys.stderr)
    print(f"Promo War-Room is starting on {base}: the database, then the server…", flush=True)
    dsn = open_database(settings)
    demo_keys = on_connection(dsn, _fresh_demo_keys)
    write_keys(path, base, demo_keys)
    start_demo(settings, dsn, DemoSession(base, demo_keys, console, lang, banner(base, demo_keys, path, drill), drill))
    try:
        serve(settings, None, None)
    finally:
        console.close()


def _print_keys(path: Path) -> None:
    try:
        base, demo_keys = read_keys(path)
    except FileNotFoundError:
        sys.exit(f"warroom: no demo keys in {path}: start the demo with `warroom demo` (same WARROOM_DATA_DIR)")
    except (KeyError, ValueError):
        sys.exit(f"warroom: {path} is not a keys file of `warroom demo`; a new demo writes it again")
    print(f"The demo's keys ({base}), as `warroom demo` printed them:\n{keys_text(base, demo_keys, path)}")


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
