"""``warroom db``: the database schema."""

from __future__ import annotations

import argparse

from app.core.database import resolve_dsn, upgrade
from app.core.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``db upgrade`` to the ``warroom`` commands."""
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply pending migrations").set_defaults(handler=_upgrade)


def _upgrade(args: argparse.Namespace, settings: Settings) -> None:
    upgrade(resolve_dsn(settings))
    print("database schema is up to date")
