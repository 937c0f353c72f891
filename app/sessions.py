"""Browser sessions: a key exchanged once for an HttpOnly cookie, so pages never keep the key itself.

The on-call page posts an operator (or screen) key to ``POST /v1/sessions``
and gets a random session token in a cookie (HttpOnly, SameSite=Strict,
Secure over https, expiring after ``WARROOM_SESSION_HOURS``). Only the token's
SHA-256 is stored, next to the key it came from: a revoked key's sessions are
refused at once, and signing out deletes the row.

A cookie travels by itself, so a cookie-authenticated request that changes
something must also carry ``X-Warroom-Request`` (a header another site cannot
add without a CORS preflight this server never grants), and a websocket
handshake must come from this server's own origin.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import asyncpg
from starlette.requests import HTTPConnection

from app.database import CONNECTION_ERRORS
from app.errors import ApiError
from app.keys import ApiKey

COOKIE = "warroom_session"
TOKEN_BYTES = 32
CSRF_HEADER = "X-Warroom-Request"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_CHECK_RETRY_S = 1


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def cookie_header(token: str, max_age_s: int, secure: bool) -> str:
    """``Set-Cookie`` for a session (``max_age_s`` 0 deletes it)."""
    value = f"{COOKIE}={token}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Strict"
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
        return None if same_origin(connection) else ApiError(403, "a session cookie is accepted only from this server's own pages")
    if connection.scope["method"] in SAFE_METHODS or CSRF_HEADER.lower() in connection.headers:
        return None
    return ApiError(403, f"a request authenticated by the session cookie needs the {CSRF_HEADER} header", field=CSRF_HEADER)


async def create(conn: asyncpg.Connection, key: ApiKey, lifetime: timedelta) -> tuple[str, datetime]:
    """A new session for ``key``: the token (only the caller ever sees it) and when it expires. Expired
    sessions and those of revoked keys are cleared on the way."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires = datetime.now(timezone.utc) + lifetime
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM sessions s USING api_keys k WHERE s.key_id = k.key_id AND (s.expires_at <= now() OR k.revoked_at IS NOT NULL)"
        )
        await conn.execute(
            "INSERT INTO sessions (token_sha256, key_id, expires_at) VALUES ($1, $2, $3)", token_hash(token), key.key_id, expires
        )
    return token, expires


async def find(conn: asyncpg.Connection, token: str) -> tuple[ApiKey, datetime] | None:
    """The active key behind an unexpired session, and when the session expires."""
    row = await conn.fetchrow(
        "SELECT k.key_id, k.name, k.scope, k.rate_limit_per_s, k.created_at, k.revoked_at, s.expires_at"
        " FROM sessions s JOIN api_keys k ON k.key_id = s.key_id"
        " WHERE s.token_sha256 = $1 AND s.expires_at > now() AND k.revoked_at IS NULL",
        token_hash(token),
    )
    if row is None:
        return None
    key = ApiKey(row["key_id"], row["name"], row["scope"], row["rate_limit_per_s"], row["created_at"], row["revoked_at"])
    return key, row["expires_at"]


async def end(conn: asyncpg.Connection, token: str) -> None:
    await conn.execute("DELETE FROM sessions WHERE token_sha256 = $1", token_hash(token))


async def _lookup(connection: HTTPConnection, token: str) -> tuple[ApiKey, datetime] | None:
    try:
        async with connection.app.state.services.pool.acquire() as conn:
            return await find(conn, token)
    except CONNECTION_ERRORS:
        raise ApiError(
            503, "the session cannot be checked now: database unavailable; retry", headers={"Retry-After": str(SESSION_CHECK_RETRY_S)}
        ) from None


async def live_key(connection: HTTPConnection) -> ApiKey | None:
    """The key behind the request's session cookie if it names a live session, else None (no forgery check:
    for read-only callers such as the wall)."""
    token = connection.cookies.get(COOKIE)
    found = await _lookup(connection, token) if token else None
    return found[0] if found else None


async def current(connection: HTTPConnection) -> tuple[ApiKey, datetime] | None:
    """The session a request's cookie names (None without the cookie); ApiError when it is no longer valid or
    the request may have been forged by another site."""
    token = connection.cookies.get(COOKIE)
    if not token:
        return None
    found = await _lookup(connection, token)
    if found is None:
        raise ApiError(401, "the session has expired, was signed out, or its key was revoked: sign in again", field=COOKIE)
    if (refusal := forgery_refusal(connection)) is not None:
        raise refusal
    return found


async def session_key(connection: HTTPConnection) -> ApiKey | None:
    """The key behind the request's session cookie, if it carries one (see :func:`current`)."""
    found = await current(connection)
    return found[0] if found else None
