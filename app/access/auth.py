"""Who is calling: API key from the request, its scope, and its rate limit.

Keys are accepted as ``Authorization: Bearer <key>``, ``X-API-Key: <key>``, or
as the user name of HTTP Basic auth (how Segment SDKs send their write key);
pages use a session cookie made from a key instead (``app.access.sessions``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from starlette.requests import HTTPConnection, Request

from app.access import sessions
from app.access.keys import ApiKey, KeyCheckUnavailable, KeyStore
from app.access.ratelimit import RateLimiter, retry_after_header
from app.access.sessions import Session, SessionStore
from app.core import telemetry
from app.core.errors import ApiError
from app.core.settings import Settings

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="warroom"'}
KEY_CHECK_RETRY_S = 1
"""Retry-After when a key cannot be looked up because the database is away."""
FAILURES_FROM = "failed-from:"
"""Rate-limiter bucket prefix for failed key and session checks per client address (a key or session cached as valid
still passes)."""
ADMITTED = "warroom.admitted_key"
"""Scope entry where ``app.api.admission`` leaves the key it checked from the headers (a key, or a session cookie)
before reading the body, so the route's own check returns it instead of looking it up and counting it against the
rate limit twice."""
Found = TypeVar("Found")


class Gate(Protocol):
    """What checking a caller takes: the key and session stores, the rate limiter and the settings holding the
    limits. The wiring (``app.server``) keeps an object that has them in ``app.state.services``."""

    @property
    def settings(self) -> Settings: ...

    @property
    def keys(self) -> KeyStore: ...

    @property
    def sessions(self) -> SessionStore: ...

    @property
    def limiter(self) -> RateLimiter: ...


def gate(connection: HTTPConnection) -> Gate:
    """The stores and limits that check ``connection``'s caller."""
    found: Gate = connection.app.state.services
    return found


def presented_key(request: HTTPConnection) -> str | None:
    """The key a request carries, from whichever header it used."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and value.strip():
        return value.strip()
    if scheme == "basic" and value.strip():
        try:
            user = base64.b64decode(value.strip(), validate=True).decode("utf-8", "strict").split(":", 1)[0]
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(
                401, "Authorization: Basic credentials are not valid base64", field="Authorization", headers=CHALLENGE
            ) from None
        return user or None
    return request.headers.get("x-api-key") or None


def _admitted(request: HTTPConnection, scopes: tuple[str, ...]) -> ApiKey | None:
    """The key ``app.api.admission`` already checked for this request (from a header or a cookie), if it fits
    ``scopes``."""
    admitted: ApiKey | None = request.scope.get(ADMITTED)
    return admitted if admitted is not None and admitted.scope in scopes else None


async def _throttled(
    request: HTTPConnection, verify: Callable[[bool], Awaitable[Found | None]], refusal: ApiError, checks: str
) -> Found:
    """What ``verify`` finds, else ``refusal``, counted against the caller's address: past
    ``WARROOM_AUTH_FAILURES_PER_S`` failures, ``verify(False)`` may only find what is cached (no database lookup)
    and a miss is 429 with Retry-After."""
    services = gate(request)
    failures = FAILURES_FROM + (request.client.host if request.client else "")
    failure_rate = services.settings.auth_failures_per_s
    throttled = services.limiter.wait(failures, failure_rate)
    found = await verify(not throttled)
    if found is None and throttled:
        telemetry.AUTH_THROTTLED.inc()
        raise ApiError(
            429,
            f"too many failed {checks} from this address (more than {failure_rate:g}/s); check the key and retry later",
            headers={"Retry-After": retry_after_header(throttled)},
        )
    if found is None:
        services.limiter.acquire(failures, failure_rate)
        raise refusal
    return found


async def authenticate(request: HTTPConnection, token: str | None, scopes: tuple[str, ...]) -> ApiKey:
    """The key behind ``token`` if it is active, has one of ``scopes`` and is within its rate limit."""
    if (admitted := _admitted(request, scopes)) is not None:
        return admitted
    services = gate(request)
    if token is None:
        raise ApiError(
            401,
            "missing API key: send Authorization: Bearer <key> or X-API-Key: <key>",
            field="Authorization",
            headers=CHALLENGE,
        )

    async def verify(lookup: bool) -> ApiKey | None:
        try:
            return await services.keys.verify(token, lookup=lookup)
        except KeyCheckUnavailable:
            raise ApiError(
                503,
                "the API key cannot be checked now: database unavailable; retry",
                headers={"Retry-After": str(KEY_CHECK_RETRY_S)},
            ) from None

    refusal = ApiError(401, "invalid or revoked API key", field="Authorization", headers=CHALLENGE)
    return admit(request, await _throttled(request, verify, refusal, "key checks"), scopes)


async def session(connection: HTTPConnection, cookie: str = sessions.COOKIE) -> Session | None:
    """The live session the request's ``cookie`` names (None without that cookie); 401 when it names none, 429 past
    the address's failure limit, as for keys. No forgery check: see :func:`current_session`."""
    token = connection.cookies.get(cookie)
    if not token:
        return None
    store = gate(connection).sessions
    refusal = ApiError(
        401, "the session has expired, was signed out, or its key was revoked: sign in again", field=cookie
    )
    return await _throttled(connection, lambda lookup: store.find(token, lookup), refusal, "session checks")


async def current_session(connection: HTTPConnection) -> Session | None:
    """The on-call session a request's cookie names (None without the cookie); ApiError when it is no longer valid
    or the request may have been forged by another site."""
    found = await session(connection)
    if found is not None and (refusal := sessions.forgery_refusal(connection)) is not None:
        raise refusal
    return found


async def session_key(connection: HTTPConnection) -> ApiKey | None:
    """The key behind the request's session cookie, if it carries one (see :func:`current_session`)."""
    found = await current_session(connection)
    return found.key if found else None


def still_allowed(
    connection: HTTPConnection, token: str | None, cookie: str = sessions.COOKIE
) -> Callable[[], Awaitable[bool]]:
    """Whether the key ``token`` (without one, the session ``cookie`` names) still admits ``connection``: what a
    long-lived socket asks again every key-cache period (``app.api.streams``). KeyCheckUnavailable or a 503 ApiError
    when it cannot be told."""
    services = gate(connection)
    session_token = connection.cookies.get(cookie)

    async def check() -> bool:
        if token is not None:
            return await services.keys.verify(token) is not None
        return session_token is not None and await services.sessions.find(session_token) is not None

    return check


def admit(request: HTTPConnection, key: ApiKey, scopes: tuple[str, ...]) -> ApiKey:
    """``key`` if it has one of ``scopes`` and is within its rate limit (however it was presented)."""
    services = gate(request)
    if key.scope not in scopes:
        wanted = " or ".join(scopes)
        raise ApiError(403, f"this endpoint needs a {wanted} key; the key {key.name!r} has scope {key.scope}")
    rate = key.rate_limit_per_s if key.rate_limit_per_s is not None else services.settings.rate_limit_per_s
    wait = services.limiter.acquire(key.key_id, rate)
    if wait:
        raise ApiError(
            429,
            f"rate limit of {rate:g} requests/s for key {key.name!r} exceeded",
            headers={"Retry-After": retry_after_header(wait)},
        )
    return key


READ_SCOPES = ("screen", "operator")
"""Who may read campaign metrics and alerts: wall screens and operators."""


async def reader(request: Request) -> ApiKey:
    """A screen or operator key in a header, or ``?token=`` for kiosk screens (screen-scope keys only, so
    keys that can change things never travel in URLs)."""
    if (admitted := _admitted(request, READ_SCOPES)) is not None:
        return admitted
    token = presented_key(request)
    if token is None and (query := request.query_params.get("token")):
        return await authenticate(request, query, ("screen",))
    if token is None and (session := await session_key(request)) is not None:
        return admit(request, session, READ_SCOPES)
    return await authenticate(request, token, READ_SCOPES)


async def operator(request: Request) -> ApiKey:
    """An operator key: acknowledge, silence, configure."""
    if (admitted := _admitted(request, ("operator",))) is not None:
        return admitted
    token = presented_key(request)
    if token is None and (session := await session_key(request)) is not None:
        return admit(request, session, ("operator",))
    return await authenticate(request, token, ("operator",))
