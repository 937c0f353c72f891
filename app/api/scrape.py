"""Who may scrape ``/metrics``, and the separate listener that serves it on ``WARROOM_METRICS_PORT``.

The service metrics tell whoever reads them the live count of paid orders, so
they are not public: on the API port a scraper presents a ``metrics``-scope key
(``Authorization: Bearer``, as Prometheus' ``authorization`` block sends it)
or comes from an address in ``WARROOM_METRICS_ALLOW``. With
``WARROOM_METRICS_PORT`` set, the full server serves ``/metrics`` on that port
instead (bound to ``WARROOM_METRICS_HOST``, loopback by default), keyless, and
the API port answers 404: the port's reachability is the control. Ingest-role
processes share one port among several, so they keep ``/metrics`` on it,
behind the key or the allow-list.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access.auth import authenticate, presented_key
from app.api.browser_security import BrowserSecurity
from app.api.connections import server_config
from app.api.services import FullServices, IngestServices
from app.core import telemetry
from app.core.errors import ApiError
from app.core.settings import Settings

METRICS_PATH = "/metrics"
METRICS_SCOPE = ("metrics",)
LISTENER_STOP_S = 5.0

Access = Literal["serve", "hidden", "key"]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def access(settings: Settings, client: str | None) -> Access:
    """How the API port answers a scrape: serve it, hide it (served on the metrics port), or ask for a key."""
    if settings.metrics_port is not None and settings.role == "all":
        return "hidden"
    if client and _inside(client, settings.metrics_allow):
        return "serve"
    return "key"


def _inside(host: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


async def guarded_metrics(request: Request) -> Response:
    """``GET /metrics`` on the API port."""
    services: IngestServices | None = getattr(request.app.state, "services", None)
    if services is None:
        raise ApiError(503, "the server is starting")
    decision = access(services.settings, request.client.host if request.client else None)
    if decision == "hidden":
        raise ApiError(404, f"metrics are served on port {services.settings.metrics_port} (WARROOM_METRICS_PORT)")
    if decision == "key":
        await authenticate(request, presented_key(request), METRICS_SCOPE)
    return await telemetry.metrics_endpoint(request)


class _Listener(uvicorn.Server):
    """A uvicorn server inside the main one's event loop: the main server keeps the signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def metrics_listener(settings: Settings, services: FullServices) -> AsyncIterator[None]:
    """Serve ``/metrics`` on ``WARROOM_METRICS_HOST:WARROOM_METRICS_PORT`` while the block runs (nothing if unset).

    It reads the main app's ``services`` (for the engine's series), holds connections as the API port does
    (``app.api.connections``: timeouts, shedding the longest idle), at most ``METRICS_MAX_CONNECTIONS`` of them
    out of the same descriptor limit, and sends the same browser security headers. The socket is bound here, so a port
    in use stops the start with the reason instead of going unnoticed.
    """
    if settings.metrics_port is None:
        yield
        return
    family = socket.AF_INET6 if ":" in settings.metrics_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.metrics_host, settings.metrics_port))
    except OSError as exc:
        sock.close()
        raise RuntimeError(
            f"WARROOM_METRICS_PORT={settings.metrics_port}: cannot listen on {settings.metrics_host}: {exc}"
        ) from None
    app = Starlette(routes=[Route(METRICS_PATH, telemetry.metrics_endpoint)])
    app.state.services = services
    config = server_config(
        BrowserSecurity(app),
        settings,
        settings.metrics_host,
        settings.metrics_port,
        metrics_listener=True,
        lifespan="off",
        log_level="warning",
        access_log=False,
    )
    server = _Listener(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="metrics-listener")
    try:
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(task, LISTENER_STOP_S)
        sock.close()
