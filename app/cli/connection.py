"""What the ``warroom`` commands share: the settings from the environment, and the database a command works on.

A command that needs the database opens it (starting the embedded one when no ``DATABASE_URL`` is set) and
brings its schema up to date first, so every command works on a fresh data directory.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from app.core.database import resolve_dsn, upgrade
from app.core.settings import Settings, SettingsError

T = TypeVar("T")


def settings_from_env() -> Settings:
    """The settings, or exit with the one line that says which variable is wrong."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"warroom: {exc}")


def open_database(settings: Settings) -> str:
    """Open (start if embedded) the database and bring its schema up to date; its DSN."""
    dsn = resolve_dsn(settings)
    upgrade(dsn)
    return dsn


def on_connection(dsn: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work`` on one connection to ``dsn``, closed afterwards, and return what it returns."""

    async def connected() -> T:
        conn = await asyncpg.connect(dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(connected())
