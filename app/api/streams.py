"""Running a server-push websocket until the client goes away, or until its key or session no longer admits it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from app.access.keys import KeyCheckUnavailable
from app.api.services import ingest_services
from app.core.errors import ApiError

StillAllowed = Callable[[], Awaitable[bool]]
"""Whether the key or session that opened a socket still admits it (False: revoked, expired, signed out)."""
RECHECK_MIN_S = 1.0
"""Sockets are checked again every ``WARROOM_KEY_CACHE_S``, but never more often than this (a cache period of 0)."""
CLOSE_REVOKED = 4401
CLOSE_UNCHECKABLE = 4503


async def push_until_disconnect(
    websocket: WebSocket, push: Coroutine[Any, Any, None], still_allowed: StillAllowed | None = None
) -> None:
    """Run ``push`` (which sends frames) while reading the socket only to notice the client leave;
    then stop ``push``. Clients of push streams send nothing after connecting (what they send is ignored).
    With ``still_allowed``, the socket is closed (4401) once it answers False, checked every key-cache period."""
    pusher = asyncio.create_task(push)
    watcher = None
    if still_allowed is not None:

        async def close(code: int, reason: str) -> None:
            await websocket.close(code=code, reason=reason)

        watcher = asyncio.create_task(watch(close, still_allowed, recheck_period(websocket)))
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    finally:
        pusher.cancel()
        if watcher is not None:
            watcher.cancel()
        await asyncio.gather(pusher, *([watcher] if watcher else []), return_exceptions=True)


Close = Callable[[int, str], Awaitable[None]]


def recheck_period(websocket: HTTPConnection) -> float:
    """How often an open socket's key or session is checked again: the key-cache period (at least a second)."""
    return max(RECHECK_MIN_S, ingest_services(websocket).settings.key_cache_s)


async def watch(close: Close, still_allowed: StillAllowed, period_s: float) -> None:
    """Close a socket once ``still_allowed`` says no (4401), or cannot tell (4503: the client reconnects later),
    asking every ``period_s``."""
    while True:
        await asyncio.sleep(period_s)
        try:
            allowed = await still_allowed()
        except (KeyCheckUnavailable, ApiError):  # the database is away past the grace period: no one vouches for it
            await close(CLOSE_UNCHECKABLE, "the key or session cannot be checked now; reconnect later")
            return
        if not allowed:
            await close(CLOSE_REVOKED, "the key was revoked or the session ended")
            return
