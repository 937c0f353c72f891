"""Running a server-push websocket until the client goes away."""

from __future__ import annotations

import asyncio
from typing import Any, Coroutine

from starlette.websockets import WebSocket


async def push_until_disconnect(websocket: WebSocket, push: Coroutine[Any, Any, None]) -> None:
    """Run ``push`` (which sends frames) while reading the socket only to notice the client leave;
    then stop ``push``. Clients of push streams send nothing after connecting (what they send is ignored)."""
    pusher = asyncio.create_task(push)
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    finally:
        pusher.cancel()
        await asyncio.gather(pusher, return_exceptions=True)
