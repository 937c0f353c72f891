"""Who may see the wall: a screen key (``?token=`` in a kiosk URL, then the wall's session cookie), an operator or
screen key in a header, the wall's session cookie, or an address in ``WARROOM_WALL_ALLOW``.

An ASGI middleware in front of every ``/wall`` path, the Dash websocket
included, so no Dash route (layout, callbacks, assets, the push socket) is
reachable without it. The kiosk token is exchanged for a session
(``app.access.sessions``, stored hashed, ended by revoking the key) on the first
page load, and the session goes into an HttpOnly cookie of the wall's own
(``COOKIE``, sent only to ``/wall``, so it never replaces the on-call page's
session in the same browser): the browser's websocket handshake and Dash's
own requests carry it, and a reload after a restart still gets in. The wall
only reads, so its requests need no forgery check beyond SameSite=Strict.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
from datetime import timedelta
from http import HTTPStatus

from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.access import sessions
from app.access.auth import READ_SCOPES, admit, authenticate, presented_key, session, still_allowed
from app.access.keys import ApiKey
from app.api.streams import StillAllowed, recheck_period, watch
from app.core.database import database_unavailable
from app.core.errors import ApiError

WALL_PATH = "/wall"
COOKIE = "warroom_wall_session"
"""The kiosk's session, apart from the on-call page's (``app.access.sessions.COOKIE``)."""
LEGACY_COOKIE = "warroom_wall"
"""Before sessions, the wall's cookie held the screen key itself; a kiosk still carrying one is moved to a session."""
COOKIE_MAX_AGE_S = 30 * 86400
"""A kiosk stays signed in for a month of reboots; revoking the key ends it within ``WARROOM_KEY_CACHE_S`` (an open
Dash websocket included: it is checked again every such period)."""
RETRY_PAGE_S = 30
"""A refused wall page reloads itself this often, so fixing the key or the allow-list needs no one at the screen."""
SCREEN_SCOPE = ("screen",)
SESSION_RETRY_S = 5
"""A kiosk whose session could not be stored (database away) is asked to retry this soon."""


def is_wall_path(path: str) -> bool:
    return path == WALL_PATH or path.startswith(WALL_PATH + "/")


def allowed_address(host: str | None, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    """Whether the client address is inside one of the allow-listed networks."""
    if not host or not networks:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


def _refusal_page(status: int, message: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    title = f"{status} {HTTPStatus(status).phrase}"
    body = (
        f'<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="{RETRY_PAGE_S}">'
        f'<title>{title}</title></head><body style="background:#0b1220;color:#e8edf5;font:32px sans-serif;padding:4em">'
        f"<h1>{title}</h1><p>{html.escape(message)}</p>"
        "<p>Open the wall with a screen key: /wall/&lt;campaign&gt;?token=&lt;screen key&gt;</p></body></html>"
    )
    return HTMLResponse(body, status, headers=headers)


class WallGuard:
    """Admits ``/wall`` requests and websockets from allowed screens; everything else passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not is_wall_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        try:
            cookies, check = await self._admit(connection)
        except ApiError as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4000 + exc.status, "reason": exc.message[:120]})
            else:
                await _refusal_page(exc.status, exc.message, exc.headers)(scope, receive, send)
            return
        if scope["type"] == "websocket" and check is not None:
            await _watched(self.app, scope, receive, send, check)
            return
        if not cookies or scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *((b"set-cookie", c.encode("latin-1")) for c in cookies),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    @staticmethod
    async def _admit(connection: HTTPConnection) -> tuple[list[str], StillAllowed | None]:
        """Raise ApiError unless admitted; return the ``Set-Cookie`` values to answer with (a new session when a
        screen key came in the URL, unless the cookie already holds a session of that key, or in the old cookie)
        and how to tell later that the key or session still admits it (None: admitted by address)."""
        services = getattr(connection.app.state, "services", None)
        if services is None:
            raise ApiError(503, "the server is starting")
        client = connection.client.host if connection.client else None
        header_key = presented_key(connection)
        query_key = connection.query_params.get("token")
        if header_key is not None:
            await authenticate(connection, header_key, READ_SCOPES)
            return [], still_allowed(connection, header_key)
        if query_key:
            key = await authenticate(connection, query_key, SCREEN_SCOPE)
            token = connection.cookies.get(COOKIE)
            held = await services.sessions.find(token) if token else None
            cookies = (
                [] if held is not None and held.key.key_id == key.key_id else [await _new_session(connection, key)]
            )
            return cookies, still_allowed(connection, query_key)
        if allowed_address(client, services.settings.wall_allow):
            return [], None
        if (held := await _kiosk_session(connection)) is not None:
            admit(connection, held.key, READ_SCOPES)
            return [], still_allowed(connection, None, COOKIE)
        if legacy_key := connection.cookies.get(LEGACY_COOKIE):
            key = await authenticate(connection, legacy_key, SCREEN_SCOPE)
            cleared = f"{LEGACY_COOKIE}=; Path={WALL_PATH}; Max-Age=0; HttpOnly; SameSite=Strict"
            return [await _new_session(connection, key), cleared], still_allowed(connection, legacy_key)
        # a dead session cookie is cleared, so the kiosk's next requests (Dash sends many) count no further failures
        clear_session = {
            "Set-Cookie": sessions.cookie_header("", 0, sessions.secure(connection), name=COOKIE, path=WALL_PATH)
        }
        raise ApiError(
            401,
            "this wall needs a screen key (?token=…) or an address in WARROOM_WALL_ALLOW",
            headers=clear_session if COOKIE in connection.cookies else None,
        )


async def _watched(app: ASGIApp, scope: Scope, receive: Receive, send: Send, check: StillAllowed) -> None:
    """Run the Dash websocket until it ends or its key or session no longer admits it (closed 4401, see
    ``app.api.streams.watch``): the wall's push loop then stops with it."""
    running = asyncio.ensure_future(app(scope, receive, send))  # an ASGI app returns an awaitable, not a coroutine

    async def close(code: int, reason: str) -> None:
        await send({"type": "websocket.close", "code": code, "reason": reason})

    watcher = asyncio.create_task(watch(close, check, recheck_period(HTTPConnection(scope))))
    try:
        await asyncio.wait({running, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        running.cancel()  # nothing when it ended by itself
        _, outcome = await asyncio.gather(watcher, running, return_exceptions=True)
    if isinstance(outcome, Exception):
        raise outcome


async def _kiosk_session(connection: HTTPConnection) -> sessions.Session | None:
    """The live session the wall's cookie names; None also when it names a dead one (a failure counted against the
    address all the same: 429 past its limit)."""
    try:
        return await session(connection, COOKIE)
    except ApiError as exc:
        if exc.status != 401:
            raise
        return None


async def _new_session(connection: HTTPConnection, key: ApiKey) -> str:
    """A kiosk session for ``key``, as the ``Set-Cookie`` value that carries it; 503 ApiError while the database is
    away (this runs outside FastAPI's exception handlers, so nothing else would turn it into an answer)."""
    try:
        async with connection.app.state.services.pool.acquire() as conn:
            token, _ = await sessions.create(conn, key, timedelta(seconds=COOKIE_MAX_AGE_S))
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        raise ApiError(
            503,
            "the wall's session cannot be stored now: database unavailable; this page retries by itself",
            headers={"Retry-After": str(SESSION_RETRY_S)},
        ) from None
    return sessions.cookie_header(token, COOKIE_MAX_AGE_S, sessions.secure(connection), name=COOKIE, path=WALL_PATH)
