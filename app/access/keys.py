"""API keys: created once, shown once, stored as SHA-256 hashes, checked in constant time.

A key reads ``wr_<key_id>_<secret>``. The key id is public (it finds the row);
only the hash of the secret is stored. Keys are random 256-bit secrets, so a
fast hash is the right tool (as for GitHub tokens); a slow password hash
would only cost CPU on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from app.core import telemetry
from app.core.database import database_unavailable
from app.core.timed_cache import TimedCache

Scope = Literal["ingest", "operator", "screen", "metrics"]
SCOPES: tuple[str, ...] = Scope.__args__  # type: ignore[attr-defined]
KEY_PREFIX = "wr"
KEY_ID_BYTES = 6
SECRET_BYTES = 32
MAX_KEY_LENGTH = 128
CACHE_ENTRIES = 10_000
UNKNOWN_ENTRIES = 10_000
"""Key ids remembered as unknown, kept apart from known keys so a flood of random ids never evicts a real key."""
KEY_ID_SHAPE = re.compile(rf"[0-9a-f]{{{KEY_ID_BYTES * 2}}}")
"""Every key id this program creates: one of another shape is refused without a database lookup."""
STALE_GRACE_S = 300.0
"""While the database is away, a key (or session, ``app.access.sessions``) last confirmed within the cache period plus
this many seconds is still trusted; after that it cannot be checked (503), so a key revoked before an outage stops
working within ``WARROOM_KEY_CACHE_S`` + this, however long the outage lasts."""


class KeyOperationError(Exception):
    """A key operation could not be done (duplicate name, unknown name)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    name: str
    scope: Scope
    rate_limit_per_s: float | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Stored:
    key: ApiKey
    secret_sha256: bytes


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse(token: str) -> tuple[str, str] | None:
    """Split a presented key into (key_id, secret), or None when it is not shaped like one."""
    if len(token) > MAX_KEY_LENGTH:
        return None
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


async def create(
    conn: asyncpg.Connection, name: str, scope: Scope, rate_limit_per_s: float | None = None
) -> tuple[ApiKey, str]:
    """Create a key; return its record and the full key text (the only time it exists in clear)."""
    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    try:
        row = await conn.fetchrow(
            "INSERT INTO api_keys (key_id, name, scope, secret_sha256, rate_limit_per_s) "
            "VALUES ($1, $2, $3, $4, $5) RETURNING *",
            key_id,
            name,
            scope,
            _hash(secret),
            rate_limit_per_s,
        )
    except asyncpg.UniqueViolationError:
        raise KeyOperationError(f"an active key named {name!r} already exists; revoke it first") from None
    return _record(row).key, f"{KEY_PREFIX}_{key_id}_{secret}"


async def list_keys(conn: asyncpg.Connection, include_revoked: bool = False) -> list[ApiKey]:
    rows = await conn.fetch(
        "SELECT * FROM api_keys WHERE $1 OR revoked_at IS NULL ORDER BY created_at", include_revoked
    )
    return [_record(row).key for row in rows]


async def revoke(conn: asyncpg.Connection, name: str) -> ApiKey:
    row = await conn.fetchrow(
        "UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING *", name
    )
    if row is None:
        raise KeyOperationError(f"no active key named {name!r}")
    return _record(row).key


def _record(row: asyncpg.Record) -> _Stored:
    return _Stored(
        ApiKey(
            key_id=row["key_id"],
            name=row["name"],
            scope=row["scope"],
            rate_limit_per_s=row["rate_limit_per_s"],
            created_at=row["created_at"],
            revoked_at=row["revoked_at"],
        ),
        bytes(row["secret_sha256"]),
    )


class KeyCheckUnavailable(Exception):
    """A key not in the cache (or cached too long ago, see ``STALE_GRACE_S``) could not be looked up: the database
    is unavailable."""


class KeyStore:
    """Verifies presented keys against the database, caching rows for ``cache_s`` seconds.

    The cache bounds revocation delay to ``cache_s`` and keeps the database out
    of the per-request path. Unknown key ids are remembered for as long, in a
    bounded cache of their own; ids not shaped like ours are refused without a
    lookup. Failures per client address are throttled by ``app.access.auth``. While
    the database is away, a key cached within ``cache_s + STALE_GRACE_S`` is
    still trusted; any other is KeyCheckUnavailable.
    """

    def __init__(self, pool: asyncpg.Pool, cache_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        """``clock``: monotonic seconds (tests pass their own)."""
        self._pool = pool
        self._clock = clock
        self._known: TimedCache[str, _Stored] = TimedCache(cache_s, CACHE_ENTRIES)
        self._unknown: TimedCache[str, bool] = TimedCache(cache_s, UNKNOWN_ENTRIES)

    async def verify(self, token: str, lookup: bool = True) -> ApiKey | None:
        """The active key matching ``token``, or None; with ``lookup`` False, only a key already cached is found
        (the database is not asked)."""
        parsed = parse(token)
        if parsed is None or not KEY_ID_SHAPE.fullmatch(parsed[0]):
            return None
        key_id, secret = parsed
        stored = await self._lookup(key_id) if lookup else self._known.fresh(key_id, self._clock())
        presented = _hash(secret)
        expected = stored.secret_sha256 if stored else bytes(len(presented))
        if not hmac.compare_digest(presented, expected) or stored is None:
            return None
        if stored.key.revoked_at is not None:
            return None
        return stored.key

    async def _lookup(self, key_id: str) -> _Stored | None:
        now = self._clock()
        if (stored := self._known.fresh(key_id, now)) is not None:
            return stored
        if self._unknown.fresh(key_id, now):
            return None
        telemetry.KEY_LOOKUPS.inc()
        try:
            async with self._pool.acquire() as conn:
                row = await conn.fetchrow("SELECT * FROM api_keys WHERE key_id = $1", key_id)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            if (
                stale := self._known.stale(key_id, now, STALE_GRACE_S)
            ) is not None:  # stale beats nothing in a short outage
                return stale
            raise KeyCheckUnavailable(str(exc)) from None
        if row is None:
            self._unknown.put(key_id, True, now)
            return None
        stored = _record(row)
        self._known.put(key_id, stored, now)
        return stored
