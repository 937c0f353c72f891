"""Security headers for browsers: what a page may load and run, who may frame it, what it leaks.

Every response gets ``X-Content-Type-Options: nosniff``; HTML responses also
get a Content-Security-Policy, ``X-Frame-Options: DENY`` and
``Referrer-Policy: no-referrer``. The policy allows only this origin's scripts
plus the hashes of the few inline scripts the server itself writes (Dash's
renderer start-up), so an injected ``<script>`` does not run; styles may be
inline because Dash and Plotly set them at run time. Headers a route already
set (CORS answers, for one) are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTML = "text/html"
FRAMING = "DENY"
REFERRER = "no-referrer"


def content_security_policy(script_hashes: Iterable[str]) -> str:
    """The policy of every HTML page: same-origin everything, inline styles, the listed inline scripts only."""
    scripts = " ".join(["'self'", *script_hashes])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def security_headers(content_type: str | None, policy: str) -> dict[str, str]:
    """The headers a response of ``content_type`` gets."""
    headers = {"X-Content-Type-Options": "nosniff"}
    if content_type and content_type.split(";", 1)[0].strip().lower() == HTML:
        headers |= {"Content-Security-Policy": policy, "X-Frame-Options": FRAMING, "Referrer-Policy": REFERRER}
    return headers


class BrowserSecurity:
    """ASGI middleware adding :func:`security_headers` to every HTTP response."""

    def __init__(self, app: ASGIApp, script_hashes: Iterable[str] = ()) -> None:
        self.app = app
        self.policy = content_security_policy(script_hashes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in security_headers(headers.get("content-type"), self.policy).items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
