"""``warroom rules check`` (validate alert rule files offline) and ``warroom backtest`` (run rules over history)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from app.core.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``backtest`` and ``rules check`` to the ``warroom`` commands."""
    bt = commands.add_parser(
        "backtest", help="run alert rules over historical CSV series (timestamp + one column per metric)"
    )
    bt.add_argument("--rules", type=Path, help="a rule file; default: the dynamic rule on the value column")
    bt.add_argument("--series", type=Path, required=True, help="a CSV file or a directory of them (recursive)")
    bt.add_argument("--out", type=Path, required=True, help="where to write timestamp,value,score,severity,firing CSVs")
    bt.set_defaults(handler=_backtest)

    r = commands.add_parser("rules", help="alert rule files")
    r_sub = r.add_subparsers(dest="rules_command", required=True)
    rc = r_sub.add_parser("check", help="validate rule files offline (exit 1 with file:line:column on the first error)")
    rc.add_argument("files", nargs="+", type=Path)
    rc.set_defaults(handler=_check)


def _backtest(args: argparse.Namespace, settings: Settings) -> None:
    """Exit 0 when every series ran, 1 (with the reason) when the rules or a series could not be read."""
    from app.cli import backtest
    from app.core.configfile import ConfigError

    try:
        status = backtest.run(args.series, args.out, args.rules, clock=time.monotonic)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"warroom: {exc}", file=sys.stderr)
        status = 1
    sys.exit(status)


def _check(args: argparse.Namespace, settings: Settings) -> None:
    """Print a summary line per valid file and the error of each invalid one; exit 1 when any was invalid."""
    from alerts.evaluation.rules import load_file
    from app.core.configfile import ConfigError

    failed = 0
    for path in args.files:
        try:
            rules = load_file(path)
        except (ConfigError, OSError) as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: {len(rules.rules)} rules, {len(rules.inhibit)} inhibit rules OK")
    sys.exit(1 if failed else 0)
