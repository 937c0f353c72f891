"""Dash's own HTTP routes under ``/wall``, made to answer a client's mistakes with 4xx instead of 500.

Dash turns every exception in its routes into a 500: a component-suite file
nobody registered, a callback request that is not JSON or names no
callback. Here the component-suite handler answers 404 for files Dash did not
register, and an ASGI middleware checks each ``_dash-update-component`` body
before Dash sees it (400 with the field at fault). The wall's callback streams
over the websocket only; run over HTTP it would hold the request open forever,
so such a request is refused too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import msgspec
from dash import Dash
from dash.backends._fastapi import FastAPIDashServer
from dash.fingerprint import check_fingerprint
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import ApiError, api_error_response
from app.ingest.events import FieldError
from dashboard.access import WALL_PATH

CALLBACK_PATH = WALL_PATH + "/_dash-update-component"
WEBSOCKET_PATH = WALL_PATH + "/_dash-ws-callback"
MAX_CALLBACK_BODY_BYTES = 1024 * 1024
"""Far above what the Dash renderer sends for one callback; the body is held in memory to be checked."""
LIST_FIELDS = ("inputs", "state", "changedPropIds")


def registered_suite_file(registered_paths: Mapping[str, set[str]], package: str, fingerprinted_path: str) -> bool:
    """Whether Dash registered ``fingerprinted_path`` (cache-busting fingerprint removed) of ``package``."""
    path, _ = check_fingerprint(fingerprinted_path)
    return path in registered_paths.get(package, ())


def callback_request_error(body: bytes, callbacks: Mapping[str, Mapping[str, Any]]) -> FieldError | None:
    """What is wrong with a ``_dash-update-component`` body for ``callbacks`` (Dash's callback map), if anything."""
    try:
        request = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        return FieldError(None, f"body is not valid JSON: {exc}")
    except UnicodeDecodeError as exc:
        return FieldError(None, f"body is not valid UTF-8 at byte {exc.start}")
    if not isinstance(request, dict):
        return FieldError(None, "body must be a JSON object")
    for field in LIST_FIELDS:
        if not isinstance(request.get(field, []), list):
            return FieldError(field, f"{field} must be an array")
    if not isinstance(request.get("outputs", []), (list, dict)):
        return FieldError("outputs", "outputs must be an object or an array")
    output = request.get("output")
    if not isinstance(output, str):
        return FieldError("output", "output must be a string naming a callback (see _dash-dependencies)")
    callback = callbacks.get(output)
    if callback is None:
        return FieldError("output", f"no callback {output[:80]!r} on this wall (see _dash-dependencies)")
    if callback.get("websocket"):
        return FieldError("output", f"this callback runs over the websocket {WEBSOCKET_PATH}, not over HTTP")
    return None


def fastapi_backend(wall: Dash) -> FastAPIDashServer:
    """The wall's Dash backend: the FastAPI one, as Dash picks it for a FastAPI server (typed as the base class)."""
    return cast(FastAPIDashServer, wall.backend)


def answer_missing_suite_files(wall: Dash) -> None:
    """Make the component-suite route answer 404 for unregistered or missing files (Dash answers 500)."""
    backend = fastapi_backend(wall)
    serve: Callable[..., Response] = backend.serve_component_suites

    def serve_registered(dash_app: Dash, package_name: str, fingerprinted_path: str, request: Request) -> Response:
        missing = ApiError(404, f"no component-suite file {package_name}/{fingerprinted_path}")
        if not registered_suite_file(dash_app.registered_paths, package_name, fingerprinted_path):
            return api_error_response(missing)
        try:
            return serve(dash_app, package_name, fingerprinted_path, request)
        except OSError:  # registered, but not shipped with the installed package
            return api_error_response(missing)

    backend.serve_component_suites = serve_registered  # type: ignore[method-assign]


class CallbackRequestCheck:
    """Answers 400 (JSON error) to a ``_dash-update-component`` POST Dash could not run; passes the rest on."""

    def __init__(self, app: ASGIApp, wall: Dash) -> None:
        self.app = app
        self.wall = wall

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != CALLBACK_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
            content_type = dict(scope["headers"]).get(b"content-type", b"").split(b";", 1)[0].strip().lower()
            if content_type != b"application/json":
                raise ApiError(415, "Content-Type must be application/json", field="Content-Type")
            error = callback_request_error(body, self.wall.callback_map)
            if error is not None:
                raise ApiError(400, error.message, field=error.field)
        except ApiError as exc:
            await api_error_response(exc)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_CALLBACK_BODY_BYTES:
            raise ApiError(413, f"body exceeds the limit of {MAX_CALLBACK_BODY_BYTES} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` giving the already-read ``body`` once, then the client's own messages (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
