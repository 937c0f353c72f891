"""``warroom notify``: check notification routing files offline, and prune settled notifications."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.cli.connection import on_connection, open_database
from app.core.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``notify check|prune`` to the ``warroom`` commands."""
    n = commands.add_parser("notify", help="notification routing files (contact points and routes)")
    n_sub = n.add_subparsers(dest="notify_command", required=True)
    nc = n_sub.add_parser(
        "check", help="validate notify files offline, environment variables included (exit 1 on the first error)"
    )
    nc.add_argument("files", nargs="+", type=Path)
    nc.set_defaults(handler=_check)
    np_ = n_sub.add_parser(
        "prune", help="delete settled notifications and their attempts older than N days (retention)"
    )
    np_.add_argument("--older-than-days", type=float, required=True, help="keep this many days of notifications")
    np_.set_defaults(handler=_prune)


def _check(args: argparse.Namespace, settings: Settings) -> None:
    """Print a summary line per valid file and the error of each invalid one; exit 1 when any was invalid."""
    from alerts.notify import notifyfile
    from app.core.configfile import ConfigError

    failed = 0
    for path in args.files:
        try:
            loaded = notifyfile.parse(path.read_text(encoding="utf-8"), str(path))
        except (ConfigError, OSError, UnicodeDecodeError) as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        urls = sum(len(point.urls) for point in loaded.contact_points.values())
        print(f"{path}: {len(loaded.contact_points)} contact points ({urls} URLs), {len(loaded.routes)} routes OK")
    sys.exit(1 if failed else 0)


def _prune(args: argparse.Namespace, settings: Settings) -> None:
    from alerts.notify import outbox

    before = datetime.now(UTC) - timedelta(days=args.older_than_days)
    messages, entries = on_connection(open_database(settings), lambda c: outbox.prune(c, before))
    print(
        f"deleted {messages:,} sent, failed or cancelled notifications and {entries:,} idle group entries "
        f"from before {before.isoformat(timespec='seconds')}"
    )
