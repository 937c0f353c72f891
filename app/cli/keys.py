"""``warroom keys``: create, list and revoke API keys."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from app.access import keys
from app.cli.connection import on_connection, open_database
from app.core.settings import Settings

T = TypeVar("T")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``keys create|list|revoke`` to the ``warroom`` commands."""
    k = commands.add_parser("keys", help="API keys")
    k_sub = k.add_subparsers(dest="keys_command", required=True)
    kc = k_sub.add_parser("create", help="create a key; the key is printed alone on the last line")
    kc.add_argument("--name", required=True, help="a unique name among active keys, e.g. shop-backend")
    kc.add_argument("--scope", required=True, choices=keys.SCOPES)
    kc.add_argument(
        "--rate-limit",
        type=float,
        help="requests per second for this key (default WARROOM_RATE_LIMIT_PER_S; 0 = unlimited)",
    )
    kc.set_defaults(handler=_create)
    kl = k_sub.add_parser("list", help="list active keys")
    kl.add_argument("--all", action="store_true", help="include revoked keys")
    kl.set_defaults(handler=_list)
    kr = k_sub.add_parser("revoke", help="revoke the active key with this name")
    kr.add_argument("name")
    kr.set_defaults(handler=_revoke)


def _create(args: argparse.Namespace, settings: Settings) -> None:
    """Create the key and print it: the token is shown only this once, alone on the last line."""
    record, token = _key_operation(settings, lambda c: keys.create(c, args.name, args.scope, args.rate_limit))
    print(f"created {record.scope} key {record.name!r} (id {record.key_id}); it is shown only this once:")
    print(token)


def _list(args: argparse.Namespace, settings: Settings) -> None:
    records = on_connection(open_database(settings), lambda c: keys.list_keys(c, args.all))
    print(f"{'NAME':<24} {'SCOPE':<9} {'KEY ID':<13} {'RATE/S':>8}  CREATED                    REVOKED")
    for r in records:
        rate = f"{r.rate_limit_per_s:g}" if r.rate_limit_per_s is not None else "default"
        created = r.created_at.isoformat(timespec="seconds")
        revoked = r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else "-"
        print(f"{r.name:<24} {r.scope:<9} {r.key_id:<13} {rate:>8}  {created:<26} {revoked}")


def _revoke(args: argparse.Namespace, settings: Settings) -> None:
    record = _key_operation(settings, lambda c: keys.revoke(c, args.name))
    print(f"revoked key {record.name!r} (id {record.key_id})")


def _key_operation(settings: Settings, operation: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """What ``operation`` returns, or exit with its one-line reason when it cannot be done (a name already
    taken, no such key)."""
    dsn = open_database(settings)
    try:
        return on_connection(dsn, operation)
    except keys.KeyOperationError as exc:
        sys.exit(f"warroom: {exc}")
