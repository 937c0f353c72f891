"""Running a server-push websocket until the client goes away, or until its key or session no longer admits it."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Coroutine

from starlette.websockets import WebSocket

from app.errors import ApiError
from app.keys import KeyCheckUnavailable

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
    watcher = asyncio.create_task(_watch(websocket, still_allowed)) if still_allowed is not None else None
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    finally:
        pusher.cancel()
        if watcher is not None:
            watcher.cancel()
        await asyncio.gather(pusher, *([watcher] if watcher else []), return_exceptions=True)


async def _watch(websocket: WebSocket, still_allowed: StillAllowed) -> None:
    """Close the socket once ``still_allowed`` says no (4401), or cannot tell (4503: the client reconnects later)."""
    period = max(RECHECK_MIN_S, websocket.app.state.services.settings.key_cache_s)
    while True:
        await asyncio.sleep(period)
        try:
            allowed = await still_allowed()
        except (KeyCheckUnavailable, ApiError):  # the database is away past the grace period: no one vouches for it
            await websocket.close(code=CLOSE_UNCHECKABLE, reason="the key or session cannot be checked now; reconnect later")
            return
        if not allowed:
            await websocket.close(code=CLOSE_REVOKED, reason="the key was revoked or the session ended")
            return
