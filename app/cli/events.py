"""``warroom events``: the stored event log (retention)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from app.cli.connection import on_connection, open_database
from app.core.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``events prune`` to the ``warroom`` commands."""
    e = commands.add_parser("events", help="the stored event log")
    e_sub = e.add_subparsers(dest="events_command", required=True)
    ep = e_sub.add_parser("prune", help="delete events received more than N days ago (retention)")
    ep.add_argument("--older-than-days", type=float, required=True, help="keep this many days of events")
    ep.set_defaults(handler=_prune)


def _prune(args: argparse.Namespace, settings: Settings) -> None:
    """Delete in batches with progress on stderr, then say how many were deleted."""
    from app.ingest.retention import prune

    dsn = open_database(settings)
    before = datetime.now(UTC) - timedelta(days=args.older_than_days)

    def progress(done: int, total: int) -> None:
        print(f"\rdeleted {done:,} of at most {total:,} events", end="", file=sys.stderr, flush=True)

    deleted = on_connection(dsn, lambda c: prune(c, before, progress))
    print(file=sys.stderr)
    print(f"deleted {deleted:,} events received before {before.isoformat(timespec='seconds')}")
