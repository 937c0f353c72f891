"""Browser sessions: a key exchanged once for an HttpOnly cookie, so pages never keep the key itself.

The on-call page posts an operator (or screen) key to ``POST /v1/sessions``
and gets a random session token in a cookie (HttpOnly, SameSite=Strict,
Secure over https, expiring after ``WARROOM_SESSION_HOURS``). Only the token's
SHA-256 is stored, next to the key it came from: a revoked key's sessions are
refused, and signing out deletes the row.

Sessions are checked like keys (``app.access.keys``): a cookie not shaped like one of
our tokens is refused without a lookup, live sessions and unknown tokens are
remembered for ``WARROOM_KEY_CACHE_S`` in bounded caches of their own, and
failures count against the per-address limit of ``app.access.auth``. So revoking the
key, or signing out in another server process, takes effect within
``WARROOM_KEY_CACHE_S``, as a revoked key does; signing out ends the session
at once in the process that answers it (even when the row cannot be deleted
during an outage). While the database is away a cached session is trusted for
``app.access.keys.STALE_GRACE_S`` past its cache period, as keys are.

The on-call page and the wall kiosk have cookies of their own (``COOKIE`` on
``/``, ``dashboard.access.COOKIE`` on ``/wall``): opening the wall with a
screen key in a browser signed in on the on-call page leaves the on-call
session alone.

A cookie travels by itself, so a cookie-authenticated request that changes
something must also carry ``X-Warroom-Request`` (a header another site cannot
add without a CORS preflight this server never grants), and a websocket
handshake must come from this server's own origin.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from urllib.parse import urlsplit

import asyncpg
from starlette.requests import HTTPConnection

from app.access.keys import STALE_GRACE_S, ApiKey
from app.core import telemetry
from app.core.database import database_unavailable
from app.core.errors import ApiError
from app.core.timed_cache import TimedCache

COOKIE = "warroom_session"
"""The on-call page's session (and any API client's that signed in), on every path; the wall kiosk's session has a
cookie of its own (``dashboard.access.COOKIE``)."""
TOKEN_BYTES = 32
TOKEN_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{{math.ceil(TOKEN_BYTES * 4 / 3)}}}")
"""Every token this program creates (``secrets.token_urlsafe(TOKEN_BYTES)``): another is refused without a lookup."""
CACHE_ENTRIES = 10_000
UNKNOWN_ENTRIES = 10_000
"""Tokens remembered as unknown, kept apart from live sessions so a flood of random cookies never evicts one."""
CSRF_HEADER = "X-Warroom-Request"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_CHECK_RETRY_S = 1
ENDED_ENTRIES = 10_000
ENDED_REMEMBER_S = 3600.0
"""How long this process remembers a signed-out token, refusing it even if a lookup that raced the sign-out (or a
sign-out whose DELETE failed) would find it."""


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def cookie_header(token: str, max_age_s: int, secure: bool, name: str = COOKIE, path: str = "/") -> str:
    """``Set-Cookie`` for a session (``max_age_s`` 0 deletes it)."""
    value = f"{name}={token}; Path={path}; Max-Age={max_age_s}; HttpOnly; SameSite=Strict"
    return value + "; Secure" if secure else value


def secure(connection: HTTPConnection) -> bool:
    """Whether the cookie must be Secure: people reach the server over https (directly or per WARROOM_PUBLIC_URL)."""
    public_url = connection.app.state.services.settings.public_url or ""
    return connection.url.scheme in ("https", "wss") or public_url.startswith("https://")


def same_origin(connection: HTTPConnection) -> bool:
    """Whether a request (a websocket handshake in particular) says it comes from a page of this server."""
    origin = connection.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc == connection.headers.get("host")


def forgery_refusal(connection: HTTPConnection) -> ApiError | None:
    """Why a cookie-authenticated request may have been sent by another site, or None."""
    if connection.scope["type"] == "websocket":
        return (
            None
            if same_origin(connection)
            else ApiError(403, "a session cookie is accepted only from this server's own pages")
        )
    if connection.scope["method"] in SAFE_METHODS or CSRF_HEADER.lower() in connection.headers:
        return None
    return ApiError(
        403, f"a request authenticated by the session cookie needs the {CSRF_HEADER} header", field=CSRF_HEADER
    )


async def create(conn: asyncpg.Connection, key: ApiKey, lifetime: timedelta) -> tuple[str, datetime]:
    """A new session for ``key``: the token (only the caller ever sees it) and when it expires. Expired
    sessions and those of revoked keys are cleared on the way."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires = datetime.now(UTC) + lifetime
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM sessions s USING api_keys k"
            " WHERE s.key_id = k.key_id AND (s.expires_at <= now() OR k.revoked_at IS NOT NULL)"
        )
        await conn.execute(
            "INSERT INTO sessions (token_sha256, key_id, expires_at) VALUES ($1, $2, $3)",
            token_hash(token),
            key.key_id,
            expires,
        )
    return token, expires


class Session(NamedTuple):
    key: ApiKey
    expires_at: datetime


async def find(conn: asyncpg.Connection, token: str) -> Session | None:
    """The active key behind an unexpired session, and when the session expires."""
    row = await conn.fetchrow(
        "SELECT k.key_id, k.name, k.scope, k.rate_limit_per_s, k.created_at, k.revoked_at, s.expires_at"
        " FROM sessions s JOIN api_keys k ON k.key_id = s.key_id"
        " WHERE s.token_sha256 = $1 AND s.expires_at > now() AND k.revoked_at IS NULL",
        token_hash(token),
    )
    if row is None:
        return None
    key = ApiKey(
        row["key_id"], row["name"], row["scope"], row["rate_limit_per_s"], row["created_at"], row["revoked_at"]
    )
    return Session(key, row["expires_at"])


class SessionStore:
    """Finds sessions by token, remembering live ones and unknown tokens for ``cache_s`` seconds (see the module
    docstring: that bounds how late a revocation or a sign-out elsewhere takes effect)."""

    def __init__(self, pool: asyncpg.Pool, cache_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        """``clock``: monotonic seconds (tests pass their own)."""
        self._pool = pool
        self._clock = clock
        self._known: TimedCache[bytes, Session] = TimedCache(cache_s, CACHE_ENTRIES)
        self._unknown: TimedCache[bytes, bool] = TimedCache(cache_s, UNKNOWN_ENTRIES)
        self._ended: TimedCache[bytes, bool] = TimedCache(ENDED_REMEMBER_S, ENDED_ENTRIES)

    async def find(self, token: str, lookup: bool = True) -> Session | None:
        """The live session ``token`` names, or None; with ``lookup`` False, only a session already cached is
        found (the database is not asked). 503 ApiError when it must be asked and is away."""
        if not TOKEN_SHAPE.fullmatch(token):
            return None
        digest, now = token_hash(token), self._clock()
        if self._ended.fresh(digest, now):
            return None
        session = self._known.fresh(digest, now)
        if session is None and lookup and not self._unknown.fresh(digest, now):
            session = await self._lookup(token, digest, now)
        if session is None or session.expires_at <= datetime.now(UTC):
            return None
        return session

    async def end(self, token: str) -> None:
        """Sign out: the session is refused here at once (a lookup already under way cannot cache it again), then
        deleted. 503 ApiError when the database is away: the session then ends only in this process."""
        digest = token_hash(token)
        self._ended.put(digest, True, self._clock())
        self._known.discard(digest)
        try:
            async with self._pool.acquire() as conn:
                await conn.execute("DELETE FROM sessions WHERE token_sha256 = $1", digest)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            raise ApiError(
                503,
                "signed out here, but the session could not be deleted: database unavailable; sign out again later",
                headers={"Retry-After": str(SESSION_CHECK_RETRY_S)},
            ) from None

    async def _lookup(self, token: str, digest: bytes, now: float) -> Session | None:
        telemetry.SESSION_LOOKUPS.inc()
        try:
            async with self._pool.acquire() as conn:
                session = await find(conn, token)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            if (
                stale := self._known.stale(digest, now, STALE_GRACE_S)
            ) is not None:  # as for keys: within a grace period
                return stale
            raise ApiError(
                503,
                "the session cannot be checked now: database unavailable; retry",
                headers={"Retry-After": str(SESSION_CHECK_RETRY_S)},
            ) from None
        if self._ended.fresh(digest, self._clock()):  # signed out while this lookup was under way
            return None
        if session is None:
            self._unknown.put(digest, True, now)
        else:
            self._known.put(digest, session, now)
        return session
