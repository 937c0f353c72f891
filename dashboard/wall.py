"""The wall display: a Dash 4 app on the API's own FastAPI server at ``/wall`` and ``/wall/<campaign>``.

One persistent websocket callback per page streams the numbers (see
``stream``). Set up so an unattended screen never freezes: the callback is
registered on this app (not globally, which reaches the app only after a first
page load), the websocket never times out for inactivity, and the page's
watchdog (assets/watchdog.js) reloads it when pushes stop and the server
answers again. Dash's catch-all GET route is left out so unknown API paths
still answer 404, and Dash's own routes answer bad requests with 4xx (see ``routes``).
"""

from __future__ import annotations

from pathlib import Path

from dash import Dash, State
from dash.backends._fastapi import reset_current_request, set_current_request
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse

from app.core.settings import Settings
from dashboard import layout, routes, stream
from dashboard.access import WALL_PATH, WallGuard

ASSETS = Path(__file__).resolve().parent / "assets"
TITLE = "Promo War-Room"


def _no_catchall() -> None:
    """Replaces Dash's catch-all route, which would answer every unknown GET (``/v1/typo``) with the wall page."""


def mount(api: FastAPI, settings: Settings) -> Dash:
    """Serve the wall from ``api``; its services (metrics, alerts, keys) are read from ``api.state`` per page."""
    wall = Dash(
        __name__,
        server=api,  # type: ignore[arg-type]  # Dash accepts a server instance (documented); its hint omits it
        url_base_pathname=WALL_PATH + "/",
        assets_folder=str(ASSETS),
        title=TITLE,
        update_title=None,  # type: ignore[arg-type]  # documented: None keeps the title; the hint says str
        serve_locally=True,
        websocket_inactivity_timeout=0,
    )
    routes.fastapi_backend(wall)._setup_catchall = _no_catchall  # type: ignore[method-assign]
    routes.answer_missing_suite_files(wall)
    wall.layout = layout.build(settings.wall_language)
    shared: list[stream.Views] = []
    """One rendering per (campaign, language) for every page of this server, made once its services exist."""

    @wall.callback(State("url", "pathname"), State("url", "search"), websocket=True, persistent=True)
    async def push(pathname: str | None, search: str | None) -> None:
        services = api.state.services
        if not shared:
            shared.append(stream.Views(services.metrics, services.alerts))
        await stream.run(services, shared[0], pathname, search)

    async def campaign_page(request: Request) -> HTMLResponse:
        """The same page at ``/wall/<campaign>``; Dash reads the request from its context variable, set here as
        Dash's own routes have it set by its middleware (which only covers ``/wall/`` and ``/wall/_dash-*``)."""
        token = set_current_request(request)
        try:
            return HTMLResponse(wall.index())
        finally:
            reset_current_request(token)

    api.add_api_route(WALL_PATH + "/{campaign}", campaign_page, methods=["GET"], include_in_schema=False)
    wall._setup_server()
    api.add_middleware(routes.CallbackRequestCheck, wall=wall)
    api.add_middleware(WallGuard)
    return wall
