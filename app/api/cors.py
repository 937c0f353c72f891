"""Cross-origin posts from browsers (analytics.js, the RudderStack JS SDK) to the Segment-compatible endpoints.

A shop's web front end runs on its own origin; the browser first asks with an
``OPTIONS`` preflight (no key: it sends none) and reads an answer only if it
names the page's origin. Only the origins in ``WARROOM_CORS_ORIGINS`` (or any,
with ``*``) get those headers, and only on ``segment.ENDPOINTS``: every other
endpoint is for servers and operators, never for a third-party page.

The layer sits outside everything else of the app, so error answers (401,
413, 429, 503…) carry the headers too and a browser SDK can read their
status and ``Retry-After``. A request from an origin not listed is passed on
unchanged (a server-side SDK sends no ``Origin``; a browser then cannot read
the answer); only its preflight is refused, with 403.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import ApiError, api_error_response
from app.ingest.segment import ENDPOINTS

ANY_ORIGIN = "*"
ALLOWED_METHODS = "POST, OPTIONS"
EXPOSED_HEADERS = "Retry-After"
PREFLIGHT_MAX_AGE_S = 600
"""How long a browser may reuse a preflight answer (Chromium caps it at 7200)."""


def allowed(origin: str | None, origins: tuple[str, ...]) -> bool:
    """Whether a page on ``origin`` may post here (origins as configured: lower case, or ``*``)."""
    return origin is not None and (ANY_ORIGIN in origins or origin.lower() in origins)


def preflight_headers(origin: str, requested_headers: str | None) -> dict[str, str]:
    """The answer to an allowed preflight: the page's origin, POST, and the headers it asked to send
    (an SDK's own: Authorization, Content-Encoding, X-Retry-Count, AnonymousId…)."""
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
    }
    if requested_headers:
        headers["Access-Control-Allow-Headers"] = requested_headers
    return headers


class SegmentCors:
    """Answers preflights of the Segment-compatible endpoints and adds CORS headers to their answers."""

    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.origins or scope["type"] != "http" or scope["path"] not in ENDPOINTS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        requested_method = headers.get("access-control-request-method")
        if scope["method"] == "OPTIONS" and origin is not None and requested_method is not None:
            await self._preflight(origin, headers.get("access-control-request-headers"))(scope, receive, send)
            return
        if origin is None or not allowed(origin, self.origins):
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"access-control-expose-headers", EXPOSED_HEADERS.encode("latin-1")),
                    (b"vary", b"Origin"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _preflight(self, origin: str, requested_headers: str | None) -> Response:
        if not allowed(origin, self.origins):
            return api_error_response(
                ApiError(
                    403, f"origin {origin[:100]!r} may not post here; add it to WARROOM_CORS_ORIGINS", field="Origin"
                )
            )
        return Response(status_code=204, headers=preflight_headers(origin, requested_headers))
