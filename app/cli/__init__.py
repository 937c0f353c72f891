"""The ``warroom`` command: run the server, manage the database and API keys, run benchmarks."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC
from pathlib import Path
from typing import TypeVar

import asyncpg

from app.access import keys
from app.cli import campaigns as campaigns_cli
from app.core.database import resolve_dsn, upgrade
from app.core.settings import Settings, SettingsError
from app.ingest import importer

T = TypeVar("T")
STARTUP_FAILURE = 3
"""Exit status when the server could not start (uvicorn's own convention)."""


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"warroom: {exc}")


def _database(settings: Settings) -> str:
    """Open (start if embedded) the database and bring its schema up to date."""
    dsn = resolve_dsn(settings)
    upgrade(dsn)
    return dsn


async def _with_connection(dsn: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    conn = await asyncpg.connect(dsn)
    try:
        return await work(conn)
    finally:
        await conn.close()


def _check_configuration(settings: Settings) -> None:
    """Stop before anything starts when a campaign, rule or notify file is invalid: one line naming
    the file, line and field, instead of a start-up traceback."""
    from alerts.evaluation.rules import load_directory
    from alerts.notify import routing
    from app.campaigns import model as campaigns
    from app.core.configfile import ConfigError

    try:
        campaigns.load_directory(settings.campaigns_dir)
        load_directory(settings.rules_dir)
        routing.load(settings.notify_file)
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        sys.exit(f"warroom: {exc}")


def serve(settings: Settings, host: str | None, port: int | None, ready_fd: int | None = None) -> None:
    """Run the app of ``settings.role`` until SIGTERM/SIGINT, then drain gracefully.

    An ingest-role process listens on its own ``SO_REUSEPORT`` socket, so several share one port.
    """
    from app.api.connections import server_config
    from app.core import logs
    from app.ingest.tier import follow_parent, reuseport_socket, signal_ready
    from app.server import Server, create_full_app, create_ingest_app

    ingest = settings.role == "ingest"
    if not ingest:
        _check_configuration(settings)
    log_config = logs.configure(settings.log_level, settings.log_format)
    host, port = host or settings.host, port or settings.port
    if ready_fd is not None:
        follow_parent()
    if ingest:
        app = create_ingest_app(settings, (lambda: signal_ready(ready_fd)) if ready_fd is not None else lambda: None)
    else:
        app = create_full_app(settings)
    config = server_config(
        app, settings, host, port, loop="uvloop", log_config=log_config, access_log=settings.access_log
    )
    server = Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[reuseport_socket(host, port)] if ingest else None)
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def create_key(dsn: str, name: str, scope: str, rate_limit: float | None) -> str:
    async def work(conn: asyncpg.Connection) -> tuple[keys.ApiKey, str]:
        return await keys.create(conn, name, scope, rate_limit)  # type: ignore[arg-type]

    try:
        record, token = asyncio.run(_with_connection(dsn, work))
    except keys.KeyOperationError as exc:
        sys.exit(f"warroom: {exc}")
    print(f"created {record.scope} key {record.name!r} (id {record.key_id}); it is shown only this once:")
    print(token)
    return token


def _keys_command(args: argparse.Namespace, settings: Settings) -> None:
    dsn = _database(settings)
    if args.keys_command == "create":
        create_key(dsn, args.name, args.scope, args.rate_limit)
    elif args.keys_command == "list":
        records = asyncio.run(_with_connection(dsn, lambda c: keys.list_keys(c, args.all)))
        print(f"{'NAME':<24} {'SCOPE':<9} {'KEY ID':<13} {'RATE/S':>8}  CREATED                    REVOKED")
        for r in records:
            rate = f"{r.rate_limit_per_s:g}" if r.rate_limit_per_s is not None else "default"
            revoked = r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else "-"
            created = r.created_at.isoformat(timespec="seconds")
            print(f"{r.name:<24} {r.scope:<9} {r.key_id:<13} {rate:>8}  {created:<26} {revoked}")
    elif args.keys_command == "revoke":
        try:
            record = asyncio.run(_with_connection(dsn, lambda c: keys.revoke(c, args.name)))
        except keys.KeyOperationError as exc:
            sys.exit(f"warroom: {exc}")
        print(f"revoked key {record.name!r} (id {record.key_id})")


def _prune_command(args: argparse.Namespace, settings: Settings) -> None:
    from datetime import datetime, timedelta

    from app.ingest.retention import prune

    dsn = _database(settings)
    before = datetime.now(UTC) - timedelta(days=args.older_than_days)

    def progress(done: int, total: int) -> None:
        print(f"\rdeleted {done:,} of at most {total:,} events", end="", file=sys.stderr, flush=True)

    deleted = asyncio.run(_with_connection(dsn, lambda c: prune(c, before, progress)))
    print(file=sys.stderr)
    print(f"deleted {deleted:,} events received before {before.isoformat(timespec='seconds')}")


DEMO_KEY_SCOPES = ("ingest", "screen", "operator", "metrics")


async def _fresh_demo_keys(conn: asyncpg.Connection) -> dict[str, str]:
    """Revoke the previous demo's keys and create one per scope, named demo-<scope>."""
    await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE name LIKE 'demo-%' AND revoked_at IS NULL")
    return {scope: (await keys.create(conn, f"demo-{scope}", scope))[1] for scope in DEMO_KEY_SCOPES}  # type: ignore[arg-type]


def demo(settings: Settings, drill: bool) -> None:
    """Start the product: embedded database, fresh demo keys, the server, and a Double-11 drill feeding it."""
    from app.drill.demo import DEMO_CAMPAIGN, start_demo_drill

    dsn = _database(settings)
    demo_keys = asyncio.run(_with_connection(dsn, _fresh_demo_keys))
    base = f"http://{settings.host}:{settings.port}"
    token, screen = demo_keys["ingest"], demo_keys["screen"]
    drill_line = "  drill:      the night replays at 60x while last year's history loads: midnight comes in about 25 s"
    order = (
        '{"event_id": "demo-1", "type": "order_paid", "order_id": "o-1", "amount": 199.0, "channel": "tmall", '
        f'"campaign": "{DEMO_CAMPAIGN}"}}'
    )
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
{drill_line if drill else ""}

Post an event:
  curl -sS {base}/v1/events -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\
    -d '{order}'
""",
        flush=True,
    )
    if drill:
        start_demo_drill(settings, dsn, demo_keys)
    serve(settings, None, None)


def _silences_command(args: argparse.Namespace, settings: Settings) -> None:
    import uuid
    from datetime import datetime

    from alerts.evaluation import store
    from alerts.evaluation.rules import seconds
    from alerts.evaluation.silences import Matcher, Silence

    dsn = _database(settings)
    if args.silences_command == "add":
        try:
            matchers = tuple(Matcher.parse(m) for m in args.matchers)
            start = datetime.fromisoformat(args.starts_at).timestamp() if args.starts_at else time.time()
            silence = Silence(str(uuid.uuid4()), matchers, start, start + seconds(args.duration), args.reason, args.by)
        except ValueError as exc:
            sys.exit(f"warroom: {exc}")
        asyncio.run(_with_connection(dsn, lambda c: store.save_silence(c, silence)))
        print(f"silence {silence.id} until {datetime.fromtimestamp(silence.ends_at, UTC).isoformat()}")
    elif args.silences_command == "list":
        for s in asyncio.run(_with_connection(dsn, store.silences)):
            ends = datetime.fromtimestamp(s.ends_at, UTC).isoformat(timespec="seconds")
            print(f"{s.id}  until {ends}  {' '.join(map(str, s.matchers))}  — {s.reason} ({s.created_by})")
    elif not asyncio.run(_with_connection(dsn, lambda c: store.expire_silence(c, args.id))):
        sys.exit(f"warroom: no active silence {args.id}")
    else:
        print(f"expired {args.id}")


def _backtest(args: argparse.Namespace) -> int:
    from alerts.evaluation import backtest
    from app.core.configfile import ConfigError

    try:
        return backtest.main(args.series, args.out, args.rules)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"warroom: {exc}", file=sys.stderr)
        return 1


def _check_rules(files: list[Path]) -> int:
    from alerts.evaluation.rules import load_file
    from app.core.configfile import ConfigError

    failed = 0
    for path in files:
        try:
            rules = load_file(path)
        except (ConfigError, OSError) as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: {len(rules.rules)} rules, {len(rules.inhibit)} inhibit rules OK")
    return 1 if failed else 0


def _prune_notifications(args: argparse.Namespace, settings: Settings) -> None:
    from datetime import datetime, timedelta

    from alerts.notify import outbox

    before = datetime.now(UTC) - timedelta(days=args.older_than_days)
    messages, entries = asyncio.run(_with_connection(_database(settings), lambda c: outbox.prune(c, before)))
    print(
        f"deleted {messages:,} sent, failed or cancelled notifications and {entries:,} idle group entries "
        f"from before {before.isoformat(timespec='seconds')}"
    )


def _check_notify(files: list[Path]) -> int:
    from alerts.notify import routing
    from app.core.configfile import ConfigError

    failed = 0
    for path in files:
        try:
            loaded = routing.parse(path.read_text(encoding="utf-8"), str(path))
        except (ConfigError, OSError, UnicodeDecodeError) as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        urls = sum(len(point.urls) for point in loaded.contact_points.values())
        print(f"{path}: {len(loaded.contact_points)} contact points ({urls} URLs), {len(loaded.routes)} routes OK")
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="warroom", description="Promo War-Room: real-time command center for promotions.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the API server (embedded PostgreSQL unless DATABASE_URL is set)")
    s.add_argument("--host", help="listen address (default WARROOM_HOST or 127.0.0.1)")
    s.add_argument("--port", type=int, help="listen port (default WARROOM_PORT or 8000)")
    s.add_argument(
        "--role",
        choices=("all", "ingest"),
        help="all: the whole product; ingest: only the ingest endpoints, several processes may share a port "
        "(default WARROOM_ROLE or all)",
    )
    s.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)  # set by the full server for its ingest processes

    d = sub.add_parser("demo", help="run the product with demo keys and a Double-11 drill feeding it")
    d.add_argument("--no-drill", action="store_true", help="only the server and keys, no simulated night")

    from app.drill.demo import add_parser as add_simulate_parser

    add_simulate_parser(sub)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply pending migrations")

    k = sub.add_parser("keys", help="API keys")
    k_sub = k.add_subparsers(dest="keys_command", required=True)
    kc = k_sub.add_parser("create", help="create a key; the key is printed alone on the last line")
    kc.add_argument("--name", required=True, help="a unique name among active keys, e.g. shop-backend")
    kc.add_argument("--scope", required=True, choices=keys.SCOPES)
    kc.add_argument(
        "--rate-limit",
        type=float,
        help="requests per second for this key (default WARROOM_RATE_LIMIT_PER_S; 0 = unlimited)",
    )
    kl = k_sub.add_parser("list", help="list active keys")
    kl.add_argument("--all", action="store_true", help="include revoked keys")
    kr = k_sub.add_parser("revoke", help="revoke the active key with this name")
    kr.add_argument("name")

    bt = sub.add_parser(
        "backtest", help="run alert rules over historical CSV series (timestamp + one column per metric)"
    )
    bt.add_argument("--rules", type=Path, help="a rule file; default: the dynamic rule on the value column")
    bt.add_argument("--series", type=Path, required=True, help="a CSV file or a directory of them (recursive)")
    bt.add_argument("--out", type=Path, required=True, help="where to write timestamp,value,score,severity,firing CSVs")

    r = sub.add_parser("rules", help="alert rule files")
    r_sub = r.add_subparsers(dest="rules_command", required=True)
    rc = r_sub.add_parser("check", help="validate rule files offline (exit 1 with file:line:column on the first error)")
    rc.add_argument("files", nargs="+", type=Path)

    n = sub.add_parser("notify", help="notification routing files (contact points and routes)")
    n_sub = n.add_subparsers(dest="notify_command", required=True)
    nc = n_sub.add_parser(
        "check", help="validate notify files offline, environment variables included (exit 1 on the first error)"
    )
    nc.add_argument("files", nargs="+", type=Path)
    np_ = n_sub.add_parser(
        "prune", help="delete settled notifications and their attempts older than N days (retention)"
    )
    np_.add_argument("--older-than-days", type=float, required=True, help="keep this many days of notifications")

    si = sub.add_parser(
        "silences", help="planned quiet for matching alerts (running servers pick changes up within 5 s)"
    )
    si_sub = si.add_subparsers(dest="silences_command", required=True)
    sa = si_sub.add_parser("add", help="silence alerts matching every matcher")
    sa.add_argument("matchers", nargs="+", help='e.g. sku=SKU-1001 "rule=~stock_.*" channel!=tmall')
    sa.add_argument("--duration", default="1h", help="how long, e.g. 30m, 2h (default 1h)")
    sa.add_argument("--starts-at", help="RFC 3339 start (default now)")
    sa.add_argument("--reason", required=True, help="why, e.g. 'scheduled price change at 00:00'")
    sa.add_argument("--by", default="cli", help="who creates it")
    si_sub.add_parser("list", help="active and upcoming silences")
    se = si_sub.add_parser("expire", help="end a silence now")
    se.add_argument("id")

    e = sub.add_parser("events", help="the stored event log")
    e_sub = e.add_subparsers(dest="events_command", required=True)
    ep = e_sub.add_parser("prune", help="delete events received more than N days ago (retention)")
    ep.add_argument("--older-than-days", type=float, required=True, help="keep this many days of events")

    campaigns_cli.add_arguments(
        sub.add_parser("campaigns", help="campaign definitions: check, apply, list, show, delete")
    )
    importer.add_arguments(
        sub.add_parser(
            "import", help="import events from a JSONL or CSV file (e.g. last year's history) as the API stores them"
        )
    )

    b = sub.add_parser("bench", help="benchmarks (results belong in bench/RESULTS.md)")
    b_sub = b.add_subparsers(dest="bench_command", required=True)

    def bench(name: str, help: str) -> argparse.ArgumentParser:
        """A benchmark's sub-command: every one prints a table, or with --json one JSON object."""
        command = b_sub.add_parser(name, help=help)
        command.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
        return command

    bi = bench("ingest", "raw COPY vs HTTP batch vs single-event ingest on a fresh embedded database")
    bi.add_argument("--seconds", type=float, default=8.0, help="duration of each measured phase")
    bi.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients for the batch phase")
    bi.add_argument("--single-clients", type=int, default=32, help="concurrent HTTP clients for the single-event phase")
    bi.add_argument(
        "--single-rate", type=float, default=2000.0, help="paced request rate for the latency-at-rate phase"
    )
    bi.add_argument(
        "--ingest-processes",
        type=int,
        default=2,
        help="WARROOM_INGEST_PROCESSES of the measured server; the HTTP phases post to their port"
        " (0: the server alone)",
    )
    bi.add_argument(
        "--history-rows",
        type=int,
        default=0,
        help="events already stored (COPY, not timed) before the ingest-tier phase: how ingest holds up on a big table",
    )
    bm = bench("metrics", "live snapshot freshness under load, and the metrics engine's memory bound")
    bm.add_argument("--seconds", type=float, default=20.0, help="duration of the measured load")
    bm.add_argument("--rate", type=float, default=5000.0, help="events per second posted")
    bm.add_argument(
        "--memory-events", type=int, default=2_000_000, help="synthetic events fed to the engine in-process"
    )
    ba = bench("alerts", "stock event to firing alert latency under load with many rules")
    ba.add_argument("--seconds", type=float, default=45.0, help="duration of the measured load")
    ba.add_argument("--rate", type=float, default=5000.0, help="background events per second posted")
    ba.add_argument("--rules", type=int, default=500, help="static rules generated over the demo campaign")
    bn = bench("notify", "alert fired to websocket, and event POST to a webhook receiver")
    bn.add_argument("--trials", type=int, default=30, help="alerts fired one after another (one demo SKU each)")
    bn.add_argument("--rate", type=float, default=1000.0, help="background events per second posted meanwhile")
    bb = bench("backtest", "warroom backtest over generated series: rows/s and time for 400,000 rows")
    bb.add_argument("--rows", type=int, default=400_000, help="rows in the generated corpus")
    bb.add_argument("--files", type=int, default=40, help="CSV files the rows are spread over")
    bc = bench("cpu", "CPU per event of validation and the metrics engine, in isolation")
    bc.add_argument("--events", type=int, default=100_000, help="workload events fed to the engine per repeat")
    bc.add_argument("--repeat", type=int, default=5, help="timed repeats (the median is reported)")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = _settings()
    if args.command == "serve":
        if args.role is not None:
            settings = settings.model_copy(update={"role": args.role})
        serve(settings, args.host, args.port, args.ready_fd)
    elif args.command == "demo":
        demo(settings, drill=not args.no_drill)
    elif args.command == "simulate":
        from app.drill.demo import simulate_command

        simulate_command(args)
    elif args.command == "db":
        upgrade(resolve_dsn(settings))
        print("database schema is up to date")
    elif args.command == "keys":
        _keys_command(args, settings)
    elif args.command == "silences":
        _silences_command(args, settings)
    elif args.command == "backtest":
        sys.exit(_backtest(args))
    elif args.command == "rules":
        sys.exit(_check_rules(args.files))
    elif args.command == "notify" and args.notify_command == "prune":
        _prune_notifications(args, settings)
    elif args.command == "notify":
        sys.exit(_check_notify(args.files))
    elif args.command == "events":
        _prune_command(args, settings)
    elif args.command == "campaigns":
        campaigns_cli.run(args, lambda: _database(settings))
    elif args.command == "import":
        importer.run(args, settings, lambda: _database(settings))
    elif args.command == "bench" and args.bench_command == "metrics":
        from bench import metrics as bench_metrics

        bench_metrics.main(args)
    elif args.command == "bench" and args.bench_command == "notify":
        from bench import notify as bench_notify

        bench_notify.main(args)
    elif args.command == "bench" and args.bench_command == "cpu":
        from bench import cpu as bench_cpu

        bench_cpu.main(args)
    elif args.command == "bench" and args.bench_command == "backtest":
        from bench import backtest as bench_backtest

        bench_backtest.main(args)
    elif args.command == "bench" and args.bench_command == "alerts":
        from bench import alerts as bench_alerts

        bench_alerts.main(args)
    elif args.command == "bench":
        from bench import ingest as bench_ingest

        bench_ingest.main(args)


if __name__ == "__main__":
    main()
