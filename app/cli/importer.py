"""``warroom import``: load events from a JSONL or CSV file (e.g. last year's history) as the API stores them."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import msgspec

from app.cli.connection import open_database
from app.core.configfile import plain_reason
from app.core.settings import Settings
from app.ingest.events import Slug
from app.ingest.importer import FORMATS, ImportFailed, Report, Tally, detect_format, import_records, open_records

INTERRUPTED_EXIT_STATUS = 130


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``import`` to the ``warroom`` commands."""
    parser = commands.add_parser(
        "import", help="import events from a JSONL or CSV file (e.g. last year's history) as the API stores them"
    )
    parser.add_argument("file", type=Path, help="a .jsonl/.ndjson or .csv file, optionally gzipped (.gz)")
    parser.add_argument("--campaign", type=_campaign, help="store every event under this campaign (overrides the file)")
    parser.add_argument("--format", choices=FORMATS, help="default: from the file name's extension")
    parser.set_defaults(handler=_import, usage_error=parser.error)


def _campaign(value: str) -> str:
    try:
        return msgspec.convert(value, Slug)
    except msgspec.ValidationError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: {plain_reason(str(exc))}") from None


def _import(args: argparse.Namespace, settings: Settings) -> None:
    """Exit 0 when records were processed (even if all were rejected), 1 when the file cannot be read or holds
    no records, 2 for bad arguments."""
    usage_error: Callable[[str], NoReturn] = args.usage_error  # the parser's ``error``: it exits with status 2
    fmt = args.format or detect_format(args.file)
    if fmt is None:
        usage_error(f"cannot tell the format of {args.file} from its extension; pass --format jsonl or --format csv")
    source = str(args.file)
    try:
        records = open_records(args.file, fmt)
        first = next(records, None)  # an empty file is an error found before the database starts
    except ImportFailed as exc:
        sys.exit(f"warroom: {exc}")
    if first is None:
        sys.exit(f"warroom: {source} holds no events")
    dsn = open_database(settings)
    tally = Tally()
    report = Report(source, sys.stderr)
    try:
        asyncio.run(import_records(dsn, itertools.chain([first], records), tally, report, settings, args.campaign))
    except ImportFailed as exc:
        report.finish()
        print(f"stopped {source}: {tally.describe(report.elapsed)}", file=sys.stderr)
        sys.exit(f"warroom: {exc}")
    except KeyboardInterrupt:
        report.finish()
        print(f"interrupted {source}: {tally.describe(report.elapsed)}; running it again is safe", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT_STATUS)
    report.finish()
    print(f"imported {source}: {tally.describe(report.elapsed)}")
