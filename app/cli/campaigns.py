"""``warroom campaigns``: check, apply, list, show and delete campaign definitions from the command line.

Operators keep campaigns as YAML files under version control. ``check``
validates them without a database (for CI pipelines); ``apply`` validates every
file before storing any, so a typo never leaves half a rollout behind; ``show``
prints a stored definition as YAML that ``apply`` accepts again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
import yaml

from app.campaigns import model as store
from app.core.configfile import ConfigError

T = TypeVar("T")

TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
YAML_WIDTH = 200
"""Wide enough that each SKU stays on one line, as in the files under ``campaigns/``."""
EXACT_FLOAT_INTEGERS = 2**53
"""Whole-number floats below this are written as integers; larger ones keep the float form."""
TABLE_COLUMNS = ("ID", "NAME", "PHASE", "PREHEAT START", "BURST START", "BASELINE", "SKUS")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``campaigns`` subcommands, added to the parser the CLI created for them."""
    sub = parser.add_subparsers(dest="campaigns_command", required=True)
    sub.add_parser("list", help="stored campaigns and the phase each one is in now")
    show = sub.add_parser("show", help="print a stored campaign as YAML (apply accepts it again)")
    show.add_argument("id")
    apply = sub.add_parser("apply", help="validate YAML files, then create or replace their campaigns (all or none)")
    apply.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check = sub.add_parser("check", help="validate YAML files without a database (for CI)")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    delete = sub.add_parser("delete", help="delete a stored campaign (its events stay)")
    delete.add_argument("id")


def run(args: argparse.Namespace, open_database: Callable[[], str]) -> None:
    """Run one ``campaigns`` subcommand; ``open_database`` is called only by those that need the database."""
    command = args.campaigns_command
    if command == "check":
        for path, campaign in _valid_or_exit(args.files, ""):
            print(f"ok {path} ({campaign.id})")
    elif command == "apply":
        loaded = _valid_or_exit(args.files, "; nothing was applied")
        results = _on_database(open_database(), lambda conn: _save_all(conn, [c for _, c in loaded]))
        for (path, campaign), created in zip(loaded, results, strict=False):
            print(f"{'created' if created else 'updated'} {campaign.id} ({path})")
    elif command == "list":
        stored = _on_database(open_database(), store.fetch_all)
        print("\n".join(table(stored, datetime.now(UTC))))
    elif command == "show":
        found = _on_database(open_database(), lambda conn: store.fetch(conn, args.id))
        if found is None:
            sys.exit(f"warroom: no campaign {args.id!r}")
        print(to_yaml(found), end="")
    elif command == "delete":
        if not _on_database(open_database(), lambda conn: store.delete(conn, args.id)):
            sys.exit(f"warroom: no campaign {args.id!r}")
        print(f"deleted {args.id} (its events stay)")


def validate(paths: list[Path]) -> tuple[list[tuple[Path, store.Campaign]], list[str]]:
    """Load every file: the valid campaigns, and one ``file:line:col: field: reason`` per invalid file."""
    loaded: list[tuple[Path, store.Campaign]] = []
    errors: list[str] = []
    defined_in: dict[str, Path] = {}
    for path in paths:
        try:
            campaign = store.load_file(path)
        except ConfigError as exc:
            errors.append(str(exc))
            continue
        except OSError as exc:
            errors.append(f"{path}: cannot read: {exc.strerror or exc}")
            continue
        except UnicodeDecodeError:
            errors.append(f"{path}: cannot read: not UTF-8 text")
            continue
        if campaign.id in defined_in:
            errors.append(f"{path}: id: {campaign.id!r} is also defined in {defined_in[campaign.id]}")
            continue
        defined_in[campaign.id] = path
        loaded.append((path, campaign))
    return loaded, errors


def _valid_or_exit(paths: list[Path], consequence: str) -> list[tuple[Path, store.Campaign]]:
    """The loaded campaigns when every file is valid; otherwise print the errors and exit 1."""
    loaded, errors = validate(paths)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(f"warroom: {len(errors)} invalid of {len(paths)} file(s){consequence}")
    return loaded


async def _save_all(conn: asyncpg.Connection, campaigns: list[store.Campaign]) -> list[bool]:
    """Store all campaigns in one transaction; for each, True when it was new."""
    async with conn.transaction():
        return [await store.save(conn, campaign) for campaign in campaigns]


def _on_database(dsn: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    async def connected() -> T:
        conn = await asyncpg.connect(dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(connected())


def phase_label(campaign: store.Campaign, now: datetime) -> str:
    """The phase running now, or where ``now`` is relative to the campaign when no phase runs."""
    phase = campaign.phase_at(now)
    if phase is not None:
        return phase
    if now < campaign.start:
        return "upcoming"
    return "ended" if now >= campaign.end else "between phases"


def table(campaigns: list[store.Campaign], now: datetime) -> list[str]:
    """Aligned text lines, a header first; times in each campaign's own time zone."""

    def local(moment: datetime, campaign: store.Campaign) -> str:
        return moment.astimezone(ZoneInfo(campaign.timezone)).isoformat(timespec="minutes")

    rows = [TABLE_COLUMNS] + [
        (
            c.id,
            c.name,
            phase_label(c, now),
            local(c.phases.preheat.start, c),
            local(c.phases.burst.start, c),
            c.baseline or "-",
            str(len(c.skus)),
        )
        for c in campaigns
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip() for row in rows]


class _Dumper(yaml.SafeDumper):
    """Writes times as ``2026-11-11T00:00:00+08:00``, the form the campaign files use, and list entries on one line."""


class _OneLine(dict):
    """A mapping written in flow style (``{sku: SKU-1001, name: ...}``), one per list entry."""


_Dumper.add_representer(datetime, lambda dumper, moment: dumper.represent_scalar(TIMESTAMP_TAG, moment.isoformat()))
_Dumper.add_representer(
    _OneLine, lambda dumper, mapping: dumper.represent_mapping("tag:yaml.org,2002:map", mapping, flow_style=True)
)


def _plain(value: Any) -> Any:
    """Builtin data for YAML: structs become mappings in field order without unset (None) optional fields,
    structs inside lists become one-line mappings, and whole-number floats are written as integers
    (``price: 3999``, not ``3999.0``)."""
    if isinstance(value, msgspec.Struct):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in msgspec.structs.fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, list):
        return [_OneLine(_plain(item)) if isinstance(item, msgspec.Struct) else _plain(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < EXACT_FLOAT_INTEGERS:
        return int(value)
    return value


def to_yaml(campaign: store.Campaign) -> str:
    """The campaign as YAML that ``store.parse`` turns back into an equal campaign."""
    return yaml.dump(
        _plain(campaign),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=YAML_WIDTH,
    )
