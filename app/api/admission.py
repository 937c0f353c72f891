"""Admission of request bodies: who may send one, how large, how slowly, and how many at once.

Starlette and FastAPI read a body before a route's dependencies check its key,
with no size limit, so anyone could make the server hold hundreds of MiB.
This ASGI layer runs first, for every request that carries a body (CORS
preflights, ``OPTIONS``, are left alone):

1. the route's key check runs on the headers alone (401/403/429/503 without
   reading a byte; the route then reuses that key, see ``app.access.auth.ADMITTED``);
2. a declared ``Content-Length`` over the route's limit is a 413 at once, a
   chunked body is counted and cut off at the limit;
3. the whole body must arrive within ``WARROOM_BODY_TIMEOUT_S`` (else 408);
4. at most ``WARROOM_MAX_BODIES_IN_FLIGHT`` bodies are received at once (else
   503 with ``Retry-After``); bodies that carry their own key (Segment's
   ``writeKey``) are refused above a smaller size and share a quarter of the slots.

A refused body is never read into memory: up to ``DRAIN_BYTES`` it is
discarded as it arrives, beyond that the connection is closed. A body
of an API route other than ingest (silences, acknowledgements, campaigns as
JSON) nested deeper than ``nesting.MAX_BODY_DEPTH`` is a 400, before a
recursive JSON decoder sees it; ingest handlers check their own bodies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.access.auth import ADMITTED, authenticate, operator, presented_key, reader
from app.access.keys import ApiKey
from app.api.campaigns import MAX_CAMPAIGN_BYTES
from app.api.ingest import EVENTS_PATH, INGEST_SCOPES, SEGMENT_PATHS
from app.api.payloads import too_deep_error
from app.core import nesting
from app.core.database import database_unavailable
from app.core.errors import ApiError, api_error_response
from app.core.settings import Settings

KEYLESS_SHARE = 4
"""Bodies carrying their own key may take one in this many of the in-flight slots, so they cannot starve keyed ones."""
BUSY_RETRY_S = 1
DRAIN_BYTES = 16 * 1024 * 1024
"""A refused body declared up to this size is left for the server to discard as it arrives, so the client reads the
answer (a connection closed mid-upload reads as a network error, which clients retry); a larger or chunked one is
cut off by closing the connection. Discarding holds no memory and ends with the header timeout
(``app.api.connections``)."""
ROUTE_BODY_LIMITS: dict[tuple[str, str], int] = {("PUT", "/v1/campaigns/{campaign_id}"): MAX_CAMPAIGN_BYTES}
"""Routes whose body may exceed the operator limit (``WARROOM_MAX_API_BODY_BYTES``)."""
KeyCheck = Callable[[Request], Awaitable[ApiKey]]
HEADER_KEY_CHECKS: tuple[KeyCheck, ...] = (operator, reader)
"""Route dependencies that decide from the headers alone, so they can run before the body is read."""
YAML_TYPES = (b"application/yaml", b"application/x-yaml", b"text/yaml")
KEY_CHECK_RETRY_S = 1
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Policy:
    """What a route asks of a body before it is read."""

    check: KeyCheck | None
    limit: int
    keyless: bool = False
    """The key travels inside the body (Segment ``writeKey``): only the handler can check it."""
    depth_checked: bool = False
    """An API route that decodes the body as JSON (or YAML, checked by ``app.core.configfile``) without a depth
    limit."""


async def _ingest_key(request: Request) -> ApiKey:
    return await authenticate(request, presented_key(request), INGEST_SCOPES)


def has_body(scope: Scope) -> bool:
    """Whether the request declares a body (a non-zero Content-Length, or any Transfer-Encoding)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.strip() not in (b"0", b""):
            return True
        if name == b"transfer-encoding":
            return True
    return False


def declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.strip().isdigit():
            return int(value)
    return None


def drainable(scope: Scope) -> bool:
    """Whether a refused, unread body is small enough to be discarded as it arrives (see ``DRAIN_BYTES``)."""
    declared = declared_length(scope)
    return declared is not None and declared <= DRAIN_BYTES


def _yaml(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() in YAML_TYPES
    return False


class Admission:
    """The ASGI layer in front of the app; ``app`` gets the body already read, in one piece."""

    def __init__(self, app: ASGIApp, settings: Settings, routes: Callable[[], Iterable[BaseRoute]]) -> None:
        """``routes``: the app's routes, read per request (routes may be added after this is built)."""
        self._app = app
        self._settings = settings
        self._routes = routes
        self._in_flight = 0
        self._keyless_in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or not has_body(scope):
            await self._app(scope, receive, send)
            return
        request = Request(scope)
        try:
            policy = self._policy(scope, request)
            if policy.check is not None:
                scope[ADMITTED] = await _checked(policy.check, request)
            self._admit(scope, policy)
        except ApiError as exc:
            await _refuse(exc, scope, receive, send, close=not drainable(scope))
            return
        try:
            body = await self._receive_body(receive, policy)
        except ApiError as exc:  # part of the body was read: what follows cannot be told from a next request cheaply
            await _refuse(exc, scope, receive, send, close=True)
            return
        if body is None:  # the client went away mid-body: there is no one to answer
            return
        if policy.depth_checked and not _yaml(scope) and nesting.too_deep(body, nesting.MAX_BODY_DEPTH) is not None:
            await _refuse(too_deep_error(body, nesting.MAX_BODY_DEPTH), scope, receive, send, close=False)
            return
        await self._app(scope, _replay(body, receive), send)

    def _policy(self, scope: Scope, request: Request) -> Policy:
        path, method, settings = scope["path"], scope["method"], self._settings
        if method == "POST" and path == EVENTS_PATH:
            return Policy(_ingest_key, settings.max_body_bytes)
        if method == "POST" and path in SEGMENT_PATHS:
            if presented_key(request) is None:
                return Policy(None, settings.max_keyless_body_bytes, keyless=True)
            return Policy(_ingest_key, settings.max_body_bytes)
        for route in self._routes():
            if not isinstance(route, APIRoute) or route.matches(scope)[0] != Match.FULL:
                continue
            calls = [dependency.call for dependency in route.dependant.dependencies]
            check = next((call for call in calls if call in HEADER_KEY_CHECKS), None)
            limit = ROUTE_BODY_LIMITS.get((method, route.path), settings.max_api_body_bytes)
            return Policy(check, limit, depth_checked=True)
        return Policy(None, settings.max_api_body_bytes)

    def _admit(self, scope: Scope, policy: Policy) -> None:
        """Refuse a body declared over the limit, or one for which no in-flight slot is free."""
        declared = declared_length(scope)
        if declared is not None and declared > policy.limit:
            raise ApiError(413, f"body is {declared} bytes; the limit for this endpoint is {policy.limit}")
        settings = self._settings
        keyless_slots = max(1, settings.max_bodies_in_flight // KEYLESS_SHARE)
        if self._in_flight >= settings.max_bodies_in_flight or (
            policy.keyless and self._keyless_in_flight >= keyless_slots
        ):
            raise ApiError(
                503,
                "too many request bodies are being received at once; retry",
                headers={"Retry-After": str(BUSY_RETRY_S)},
            )

    async def _receive_body(self, receive: Receive, policy: Policy) -> bytes | None:
        """The whole body, within the policy's limit and the read timeout, holding an in-flight slot meanwhile."""
        settings = self._settings
        self._in_flight += 1
        self._keyless_in_flight += policy.keyless
        try:
            async with asyncio.timeout(settings.body_timeout_s):
                return await _read(receive, policy.limit)
        except TimeoutError:
            raise ApiError(
                408, f"the body did not arrive within {settings.body_timeout_s:g} s", code="body_timeout"
            ) from None
        finally:
            self._in_flight -= 1
            self._keyless_in_flight -= policy.keyless


async def _checked(check: KeyCheck, request: Request) -> ApiKey:
    """``check``'s key; any failure other than an ApiError as one (this layer is outside FastAPI's exception
    handlers, so uvicorn would otherwise answer a bare text 500): 503 when the database is away, else 500."""
    try:
        return await check(request)
    except ApiError:
        raise
    except Exception as exc:
        if database_unavailable(exc):
            raise ApiError(
                503,
                "the API key cannot be checked now: database unavailable; retry",
                headers={"Retry-After": str(KEY_CHECK_RETRY_S)},
            ) from None
        logger.exception("key check failed")
        raise ApiError(500, "the API key could not be checked: internal error; retry later") from None


async def _read(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body exceeds the limit of {limit} bytes for this endpoint")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body read here, then passes on what the server sends (disconnect)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


async def _refuse(exc: ApiError, scope: Scope, receive: Receive, send: Send, close: bool) -> None:
    """Answer ``exc``; with ``close``, end the connection too, so the rest of the body is never read."""
    response = api_error_response(exc)
    if close:
        response.headers["Connection"] = "close"
    await response(scope, receive, send)
