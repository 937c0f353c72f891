"""Where the data lives: the embedded or external PostgreSQL, its connection pool and its schema version.

With ``DATABASE_URL`` unset the service runs PostgreSQL itself through the
``pgserver`` package, in a persistent data directory, so a fresh machine needs
nothing installed by hand. The schema is only ever changed by the Alembic
migrations in ``migrations/``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Awaitable, Callable

import asyncpg

from app.settings import Settings

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "warroom"
POOL_MIN_SIZE = 2
POOL_MAX_SIZE = 10
CONNECT_TIMEOUT_S = 5.0
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
CONNECTION_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)
"""What a query raises when the database cannot be reached (or is shutting down). ``asyncpg.DataError``
is an ``InterfaceError`` too, but it means a value could not be encoded: catch it first where it matters."""


class EmbeddedPostgres:
    """A PostgreSQL server owned by this machine's processes, kept in ``pgdata``.

    Several processes (the server, the CLI, tests) may share one data directory;
    the server stops when the last of them exits.
    """

    def __init__(self, pgdata: Path) -> None:
        import pgserver

        pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata = pgdata
        self._server = pgserver.get_server(pgdata, cleanup_mode="stop")

    def release(self) -> None:
        """Let go of the server: it stops when no process uses it any more.

        pgserver does this at interpreter exit, but a process that ends by the re-raised SIGTERM of a
        graceful shutdown skips exit handlers, so the server calls this itself when it stops.
        """
        self._server.cleanup()

    def dsn(self, database: str = EMBEDDED_DATABASE) -> str:
        return self._server.get_uri(database)

    def ensure_database(self, database: str = EMBEDDED_DATABASE) -> None:
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
        if "(1 row)" not in exists:
            self.create_database(database)

    def create_database(self, database: str, template: str | None = None) -> None:
        """Create a database, optionally as a copy of ``template`` (how tests get a migrated schema fast)."""
        clause = f' TEMPLATE "{template}"' if template else ""
        self._server.psql(f'CREATE DATABASE "{database}"{clause};')


def open_database(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The database to use: ``DATABASE_URL`` if set, else the embedded server (started if needed)."""
    if settings.database_url:
        return settings.database_url, None
    log.info("starting embedded PostgreSQL", extra={"pgdata": str(settings.pgdata_dir)})
    server = EmbeddedPostgres(settings.pgdata_dir)
    server.ensure_database()
    return server.dsn(), server


def resolve_dsn(settings: Settings) -> str:
    """The DSN of ``open_database``, for short-lived commands (the embedded server is released at exit)."""
    return open_database(settings)[0]


async def create_pool(
    dsn: str,
    *,
    min_size: int = POOL_MIN_SIZE,
    max_size: int = POOL_MAX_SIZE,
    init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> asyncpg.Pool:
    """A connection pool; connections that die (database restart) are replaced on the next acquire."""
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=CONNECT_TIMEOUT_S,
        command_timeout=60,
        init=init,
        reset=_keep_session,
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release hook: nothing to undo, so no round trip.

    asyncpg's default runs ``RESET ALL``, ``UNLISTEN *``, ``CLOSE ALL`` and
    ``pg_advisory_unlock_all()`` on every release: one more round trip per group
    commit and per tail read (about 5% of an ingest process's CPU in profiles).
    This service sets no session state on pooled connections (its advisory locks
    are transaction-scoped, LISTEN uses its own connection) and the staging table
    is meant to persist. An open transaction is still rolled back by asyncpg.
    """


def _alembic_config(dsn: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["dsn"] = dsn
    return config


def upgrade(dsn: str) -> None:
    """Apply every pending migration (blocking; runs its own event loop)."""
    from alembic import command

    command.upgrade(_alembic_config(dsn), "head")


def head_revision() -> str:
    """The newest migration shipped with this version of the code."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config("")).get_current_head()
    assert head is not None, "migrations directory has no revisions"
    return head


async def upgrade_async(dsn: str) -> None:
    """Apply pending migrations from inside a running event loop."""
    await asyncio.to_thread(upgrade, dsn)


async def current_revision(conn: asyncpg.Connection) -> str | None:
    """The schema version recorded in the database, or None before the first migration."""
    exists = await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
    if not exists:
        return None
    return await conn.fetchval("SELECT version_num FROM alembic_version")
