"""The ``warroom`` command: run the server, manage the database and API keys, run benchmarks.

Each command group is one module here with a ``register(commands)`` that adds its sub-commands, each with its
handler (``set_defaults(handler=...)``); ``main`` parses the command line and calls the chosen handler with the
settings.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from app.cli import bench, campaigns, db, demo, events, importer, keys, notify, rehearse, rules, serve, silences
from app.cli.connection import settings_from_env

COMMAND_GROUPS = (serve, demo, rehearse, db, keys, rules, notify, silences, events, campaigns, importer, bench)
"""In the order ``warroom --help`` lists them."""


def parser() -> argparse.ArgumentParser:
    """The whole command line: every command group's sub-commands, each carrying its handler."""
    p = argparse.ArgumentParser(prog="warroom", description="Promo War-Room: real-time command center for promotions.")
    commands = p.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(commands)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """Run one ``warroom`` command; the settings are read (and checked) before any command runs."""
    args = parser().parse_args(argv)
    args.handler(args, settings_from_env())


if __name__ == "__main__":
    main()
