"""``warroom silences``: planned quiet for matching alerts, stored where running servers pick it up."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime

from app.cli.connection import on_connection, open_database
from app.core.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``silences add|list|expire`` to the ``warroom`` commands."""
    si = commands.add_parser(
        "silences", help="planned quiet for matching alerts (running servers pick changes up within 5 s)"
    )
    si_sub = si.add_subparsers(dest="silences_command", required=True)
    sa = si_sub.add_parser("add", help="silence alerts matching every matcher")
    sa.add_argument("matchers", nargs="+", help='e.g. sku=SKU-1001 "rule=~stock_.*" channel!=tmall')
    sa.add_argument("--duration", default="1h", help="how long, e.g. 30m, 2h (default 1h)")
    sa.add_argument("--starts-at", help="RFC 3339 start (default now)")
    sa.add_argument("--reason", required=True, help="why, e.g. 'scheduled price change at 00:00'")
    sa.add_argument("--by", default="cli", help="who creates it")
    sa.set_defaults(handler=_add)
    si_sub.add_parser("list", help="active and upcoming silences").set_defaults(handler=_list)
    se = si_sub.add_parser("expire", help="end a silence now")
    se.add_argument("id")
    se.set_defaults(handler=_expire)


def _add(args: argparse.Namespace, settings: Settings) -> None:
    from alerts.evaluation import store
    from alerts.evaluation.rules import seconds
    from alerts.evaluation.silences import Matcher, Silence

    dsn = open_database(settings)
    try:
        matchers = tuple(Matcher.parse(m) for m in args.matchers)
        start = datetime.fromisoformat(args.starts_at).timestamp() if args.starts_at else time.time()
        silence = Silence(str(uuid.uuid4()), matchers, start, start + seconds(args.duration), args.reason, args.by)
    except ValueError as exc:
        sys.exit(f"warroom: {exc}")
    on_connection(dsn, lambda c: store.save_silence(c, silence))
    print(f"silence {silence.id} until {datetime.fromtimestamp(silence.ends_at, UTC).isoformat()}")


def _list(args: argparse.Namespace, settings: Settings) -> None:
    from alerts.evaluation import store

    for s in on_connection(open_database(settings), store.silences):
        ends = datetime.fromtimestamp(s.ends_at, UTC).isoformat(timespec="seconds")
        print(f"{s.id}  until {ends}  {' '.join(map(str, s.matchers))}  — {s.reason} ({s.created_by})")


def _expire(args: argparse.Namespace, settings: Settings) -> None:
    from alerts.evaluation import store

    if not on_connection(open_database(settings), lambda c: store.expire_silence(c, args.id)):
        sys.exit(f"warroom: no active silence {args.id}")
    print(f"expired {args.id}")
