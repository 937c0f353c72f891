"""Where the data lives: the embedded or external PostgreSQL, its connection pool and its schema version.

With ``DATABASE_URL`` unset the service runs PostgreSQL itself through the
``pgserver`` package, in a persistent data directory, so a fresh machine needs
nothing installed by hand. The schema is only ever changed by the Alembic
migrations in ``migrations/``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from app.core.settings import Settings

if TYPE_CHECKING:  # alembic is imported only by the functions that migrate
    from alembic.config import Config

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "warroom"
POOL_MIN_SIZE = 2
POOL_MAX_SIZE = 10
CONNECT_TIMEOUT_S = 5.0
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})
"""SQLSTATE classes that say "not now" rather than "not this": connection exception, insufficient resources
(too many connections, disk full), operator intervention (admin shutdown, cannot connect now, cancelled
statement) and system error (I/O)."""
READ_ONLY_TRANSACTION = "25006"
"""Writing to a standby, e.g. right after a failover: the primary is elsewhere, try again later."""
ENCODING_ERROR = asyncpg.exceptions._base.DataError
"""asyncpg could not encode a value the client sent (not ``asyncpg.DataError``, which is SQLSTATE class 22)."""
REFUSED_SQLSTATE_CLASSES = frozenset({"22", "23"})
"""Data exception and integrity constraint violation: PostgreSQL refused the values themselves."""


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be used right now (retry later: 503), rather than that
    it refused the data (422) or that the code is wrong.

    asyncpg's ``InternalClientError`` is among them: a connection the server dropped mid-operation answers the
    next statement with "cannot switch to state 12; another operation (2) is in progress". The driver's own
    ``DataError`` (a value it could not encode) is an ``InterfaceError`` too, and is not."""
    if isinstance(exc, ENCODING_ERROR):
        return False
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = exc.sqlstate or ""
        return sqlstate[:2] in UNAVAILABLE_SQLSTATE_CLASSES or sqlstate == READ_ONLY_TRANSACTION
    return isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError))


def refused_data(exc: BaseException) -> bool:
    """Whether ``exc`` means the values themselves cannot be stored: one that asyncpg could not encode
    (or Python could not convert) or one PostgreSQL refused (SQLSTATE class 22 or 23)."""
    if isinstance(exc, asyncpg.PostgresError):
        return (exc.sqlstate or "")[:2] in REFUSED_SQLSTATE_CLASSES
    return isinstance(exc, (ENCODING_ERROR, ValueError, TypeError, OverflowError)) and not database_unavailable(exc)


def refusal_reason(exc: BaseException) -> str:
    """Why the values were refused, in one line for a client: PostgreSQL's message (with the constraint it
    names), without the DETAIL that repeats the whole row."""
    if isinstance(exc, asyncpg.PostgresError):
        return f"the database refused this event: {exc.args[0] if exc.args else exc.sqlstate}"
    return f"the database driver could not send a value of this event: {exc}"


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


def _alembic_config(dsn: str) -> Config:
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
