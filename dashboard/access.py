"""Who may see the wall: a screen key (``?token=`` in a kiosk URL, then a cookie), an operator or screen key in a
header, or an address in ``WARROOM_WALL_ALLOW``.

An ASGI middleware in front of every ``/wall`` path, the Dash websocket
included, so no Dash route (layout, callbacks, assets, the push socket) is
reachable without it. The kiosk token is moved into an HttpOnly cookie on
the first page load: the browser's websocket handshake and Dash's own
requests carry the cookie, and a reload after a restart still gets in.
"""

from __future__ import annotations

import html
import ipaddress
from http import HTTPStatus

from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth import READ_SCOPES, authenticate, presented_key
from app.errors import ApiError

WALL_PATH = "/wall"
COOKIE = "warroom_wall"
COOKIE_MAX_AGE_S = 30 * 86400
"""A kiosk stays signed in for a month of reboots; revoking the key ends it at once."""
RETRY_PAGE_S = 30
"""A refused wall page reloads itself this often, so fixing the key or the allow-list needs no one at the screen."""
SCREEN_SCOPE = ("screen",)


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


def _refusal_page(status: int, message: str) -> HTMLResponse:
    title = f"{status} {HTTPStatus(status).phrase}"
    body = (
        f'<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="{RETRY_PAGE_S}">'
        f"<title>{title}</title></head><body style=\"background:#0b1220;color:#e8edf5;font:32px sans-serif;padding:4em\">"
        f"<h1>{title}</h1><p>{html.escape(message)}</p>"
        "<p>Open the wall with a screen key: /wall/&lt;campaign&gt;?token=&lt;screen key&gt;</p></body></html>"
    )
    return HTMLResponse(body, status)


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
            cookie = await self._admit(connection)
        except ApiError as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4000 + exc.status, "reason": exc.message[:120]})
            else:
                await _refusal_page(exc.status, exc.message)(scope, receive, send)
            return
        if cookie is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                value = f"{COOKIE}={cookie}; Path={WALL_PATH}; Max-Age={COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Strict"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", value.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    @staticmethod
    async def _admit(connection: HTTPConnection) -> str | None:
        """Raise ApiError unless admitted; return a screen token to keep in the cookie, if one came in the URL."""
        services = getattr(connection.app.state, "services", None)
        if services is None:
            raise ApiError(503, "the server is starting")
        client = connection.client.host if connection.client else None
        header_key = presented_key(connection)
        query_key = connection.query_params.get("token")
        if header_key is not None:
            await authenticate(connection, header_key, READ_SCOPES)
            return None
        if query_key:
            await authenticate(connection, query_key, SCREEN_SCOPE)
            return query_key
        if allowed_address(client, services.settings.wall_allow):
            return None
        cookie = connection.cookies.get(COOKIE)
        if cookie:
            await authenticate(connection, cookie, SCREEN_SCOPE)
            return None
        raise ApiError(401, "this wall needs a screen key (?token=…) or an address in WARROOM_WALL_ALLOW")
