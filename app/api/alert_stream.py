"""``GET /v1/alerts/stream``: alert transitions pushed over a websocket, resumable without gaps.

Every transition (fired, escalated, de-escalated, resolved, acknowledged) has
a ``seq`` in PostgreSQL. A client connecting with ``?after=<last seq seen>``
first gets the transitions it missed, then live ones; a client without
``after`` first gets a snapshot of the firing alerts and the ``seq`` it is
current to. Transitions are always read back from the database in ``seq``
order (the in-process broadcast only wakes the stream), so a slow client
skips nothing and sees nothing twice.

Keys: an operator or screen key in a header, a screen key as ``?token=``, a
session cookie (``app.access.sessions``; from this server's own pages only), or a first
message ``{"key": "..."}``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, get_type_hints

import asyncpg
import msgspec
from fastapi import APIRouter
from starlette.websockets import WebSocket, WebSocketDisconnect

from alerts.evaluation import store
from alerts.evaluation.live import Announcement
from alerts.evaluation.views import AlertTransition, LiveAlert
from app.access.auth import READ_SCOPES, admit, authenticate, presented_key, session_key, still_allowed
from app.api.services import Alerts, Pool
from app.api.streams import StillAllowed, push_until_disconnect
from app.core.errors import ApiError

AUTH_TIMEOUT_S = 5.0
HEARTBEAT_S = 15.0
"""A heartbeat frame this often lets clients tell a quiet night from a dead connection."""
PAGE = 500
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAVAILABLE = 1013
"""Websocket "try again later"."""

router = APIRouter(tags=["alerts"])


class SnapshotFrame(msgspec.Struct, tag_field="type", tag="snapshot"):
    """The firing alerts, and the ``seq`` they are current to (the first frame without ``after``)."""

    seq: int
    alerts: list[LiveAlert]


TransitionFrame = msgspec.defstruct(
    "TransitionFrame",
    [
        *((name, kind) for name, kind in get_type_hints(AlertTransition).items() if name != "alert_id"),
        ("id", str),
    ],
    tag_field="type",
    tag="transition",
)
"""A stored transition as the stream has always sent it: the fields of ``AlertTransition``, its ``alert_id``
last, as ``id``."""


class HeartbeatFrame(msgspec.Struct, tag_field="type", tag="heartbeat"):
    """Nothing new up to ``seq``."""

    seq: int


def frame(transition: AlertTransition) -> msgspec.Struct:
    """A stored transition as the stream sends it."""
    fields = msgspec.structs.asdict(transition)
    return TransitionFrame(id=fields.pop("alert_id"), **fields)


async def _authenticate(websocket: WebSocket) -> StillAllowed | None:
    """How to tell later that the socket is still admitted (see ``app.api.streams``), or None: refused and closed."""
    token = presented_key(websocket)
    scopes: tuple[str, ...] = READ_SCOPES
    if token is None and "token" in websocket.query_params:
        token, scopes = websocket.query_params["token"], ("screen",)
    try:
        if token is None and (session := await session_key(websocket)) is not None:
            admit(websocket, session, READ_SCOPES)
            return still_allowed(websocket, None)
        if token is None:
            try:
                first = json.loads(await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_S))
                token = first.get("key") if isinstance(first, dict) else None
            except (TimeoutError, ValueError, KeyError, WebSocketDisconnect):
                token = None
            if not isinstance(token, str):
                raise ApiError(401, 'send {"key": "<operator or screen key>"} as the first message, or use a header')
        await authenticate(websocket, token, scopes)
    except ApiError as exc:  # close codes 4401/4403/4429 tell a browser why (it cannot read an HTTP status)
        await websocket.close(code=4000 + exc.status, reason=exc.message[:120])
        return None
    return still_allowed(websocket, token)


@router.websocket("/v1/alerts/stream")
async def stream(websocket: WebSocket, alerts: Alerts, pool: Pool) -> None:
    """Alert transitions as JSON text frames: a snapshot or the missed transitions, then live ones."""
    raw_after = websocket.query_params.get("after")
    await websocket.accept()
    if raw_after is not None and not raw_after.isdigit():
        await websocket.close(code=CLOSE_BAD_REQUEST, reason="after must be a non-negative integer (a seq)")
        return
    if (allowed := await _authenticate(websocket)) is None:
        return
    wake = alerts.subscribe()
    try:
        if raw_after is None:
            async with pool.acquire() as conn:
                last = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM alert_transitions")
            firing = [alerts.render(a) for a in alerts.lifecycle.alerts.values() if a.status == "firing"]
            await websocket.send_text(msgspec.json.encode(SnapshotFrame(seq=last, alerts=firing)).decode())
        else:
            last = int(raw_after)
        await push_until_disconnect(websocket, _push(websocket, pool, wake, last), allowed)
    finally:
        alerts.unsubscribe(wake)


async def _push(websocket: WebSocket, pool: Any, wake: asyncio.Queue[Announcement], last: int) -> None:
    try:
        await _push_from(websocket, pool, wake, last)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        # The client reconnects with the last seq it saw, once the database is back.
        await websocket.close(code=CLOSE_UNAVAILABLE, reason="database unavailable; reconnect with ?after=<last seq>")


async def _push_from(websocket: WebSocket, pool: Any, wake: asyncio.Queue[Announcement], last: int) -> None:
    while True:
        while True:
            async with pool.acquire() as conn:
                rows = await store.history(conn, since=None, until=None, after_seq=last, limit=PAGE)
            for row in rows:
                await websocket.send_text(msgspec.json.encode(frame(row)).decode())
                last = row.seq
            if len(rows) < PAGE:
                break
        try:
            await asyncio.wait_for(wake.get(), HEARTBEAT_S)
        except TimeoutError:
            await websocket.send_text(msgspec.json.encode(HeartbeatFrame(seq=last)).decode())
            continue
        while not wake.empty():
            wake.get_nowait()
