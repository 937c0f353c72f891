"""How the server holds connections: uvicorn's configuration, a header timeout, and a connection limit.

uvicorn closes a keep-alive connection only after a response, so a client
that connects and sends nothing, or sends its headers a byte at a time
(slowloris), holds a socket and a descriptor forever; enough of them and
the process cannot accept anyone. Here, with no proxy needed in front:

- a request's headers must be complete within ``WARROOM_HEADER_TIMEOUT_S`` of
  the connection opening or of the previous response, whatever trickles in;
- headers larger than ``MAX_HEADER_BYTES`` get 431 and the connection closes;
- idle keep-alive connections close after ``WARROOM_KEEP_ALIVE_S`` (uvicorn);
- beyond ``WARROOM_MAX_CONNECTIONS`` (lowered to fit the descriptor limit,
  which is raised to its hard maximum first, beside the metrics port's
  ``METRICS_MAX_CONNECTIONS`` when that port is set), the connection that has waited
  longest for a request is closed to make room, so a flood of idle sockets
  cannot lock out real clients.

uvicorn's ``limit_concurrency`` is not used: it answers 503 to every new request
once the count is reached, rather than shedding the idle connections.

``server_config`` is the one place the uvicorn configuration is built: ``warroom
serve`` runs with it, and so do the tests' servers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.errors import error_body
from app.core.settings import Settings

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
"""Request line and headers together; a real client sends a few KiB."""
DESCRIPTOR_RESERVE = 256
"""Descriptors kept for everything but client connections: database pool, files, ingest process pipes."""
METRICS_MAX_CONNECTIONS = 64
"""Connections the metrics port (``WARROOM_METRICS_PORT``) may hold: a few scrapers need a few. They come
out of the same descriptor limit as the API port's ``WARROOM_MAX_CONNECTIONS``, so together they fit it."""


class Connections:
    """One server's connection limits, and its connections waiting for a request's headers, oldest first."""

    def __init__(self, header_timeout_s: float, max_connections: int) -> None:
        self.header_timeout_s = header_timeout_s
        self.max_connections = max_connections
        self.waiting: dict[GuardedProtocol, None] = {}

    def oldest_waiting(self, other_than: GuardedProtocol) -> GuardedProtocol | None:
        return next((protocol for protocol in self.waiting if protocol is not other_than), None)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout, a header size limit and room made at the limit."""

    limits: Connections
    """Set on the subclass ``guarded_protocol`` makes for one listener."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = self.limits
        self._header_timer: asyncio.TimerHandle | None = None
        self._in_headers = False
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()
        if len(self.connections) > self._limits.max_connections:
            victim = self._limits.oldest_waiting(other_than=self) or self
            victim.shed("connection limit reached; closing the connection idle longest")

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_headers:
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                self._send_431()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._stop_waiting()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._await_headers()

    def shed(self, reason: str) -> None:
        """Close this connection now (it is waiting for a request, or is the one over the limit)."""
        self._stop_waiting()
        self.connections.discard(self)
        if not self.transport.is_closing():
            log.debug(reason, extra={"client": self.client})
            self.transport.close()

    def _await_headers(self) -> None:
        """Start the clock for the next request's headers (also bounding how long a refused body is discarded)."""
        self._stop_waiting()
        self._limits.waiting[self] = None
        self._header_timer = self.loop.call_later(self._limits.header_timeout_s, self._headers_late)

    def _stop_waiting(self) -> None:
        self._limits.waiting.pop(self, None)
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        self.shed(f"no complete request headers within {self._limits.header_timeout_s:g} s; closing the connection")

    def _send_431(self) -> None:
        body = error_body(431, f"request headers exceed {MAX_HEADER_BYTES} bytes", code="headers_too_large")
        payload = json.dumps(body).encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"x-content-type-options: nosniff\r\n"  # no ASGI layer sees this answer (app.api.browser_security)
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(payload) + payload
        )
        self.shed("request headers too large")


def connection_budget(wanted: int, shared_with: int = 0) -> int:
    """``wanted`` connections, or fewer when the descriptor limit (raised to its hard maximum first) is lower.

    ``shared_with`` connections of another listener in this process come out of the same limit first.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + shared_with + DESCRIPTOR_RESERVE
    if soft < needed and (hard == resource.RLIM_INFINITY or soft < hard):
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    room = soft - DESCRIPTOR_RESERVE - shared_with
    if room < wanted:
        allowed = max(1, room)
        log.warning(
            "%d connections do not fit the descriptor limit %d (%d kept for other uses, %d for the other listener);"
            " holding at most %d connections",
            wanted,
            soft,
            DESCRIPTOR_RESERVE,
            shared_with,
            allowed,
        )
        return allowed
    return wanted


def server_config(
    app: Any, settings: Settings, host: str, port: int, metrics_listener: bool = False, **options: Any
) -> uvicorn.Config:
    """The uvicorn configuration for ``app``: ``options`` (loop, logging…) on top of the connection limits.

    The metrics listener (``metrics_listener``) holds ``METRICS_MAX_CONNECTIONS``; the API port holds
    ``WARROOM_MAX_CONNECTIONS``, lowered if need be so that, with the metrics port's share when one is
    set and ``DESCRIPTOR_RESERVE``, they fit the descriptor limit.
    """
    if metrics_listener:
        budget = connection_budget(METRICS_MAX_CONNECTIONS)
    else:
        budget = connection_budget(settings.max_connections, METRICS_MAX_CONNECTIONS if settings.metrics_port else 0)
    connections = Connections(settings.header_timeout_s, budget)
    config: dict[str, Any] = {
        "timeout_keep_alive": settings.keep_alive_s,
        "timeout_graceful_shutdown": settings.shutdown_grace_s,
        **options,
    }
    return uvicorn.Config(app, host=host, port=port, http=guarded_protocol(connections), **config)


def guarded_protocol(connections: Connections) -> type[GuardedProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to one listener's ``connections``."""
    return type("GuardedProtocol", (GuardedProtocol,), {"limits": connections})
