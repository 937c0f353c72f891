"""``GET /v1/alerts/stream``: alert transitions pushed over a websocket, resumable without gaps.

Every transition (fired, escalated, de-escalated, resolved, acknowledged) has
a ``seq`` in PostgreSQL. A client connecting with ``?after=<last seq seen>``
first gets the transitions it missed, then live ones; a client without
``after`` first gets a snapshot of the firing alerts and the ``seq`` it is
current to. Transitions are always read back from the database in ``seq``
order (the in-process broadcast only wakes the stream), so a slow client
skips nothing and sees nothing twice.

Each alert says which clock its times are on (``clock``: ``live``, or ``replay`` for a rehearsed night) and its
campaign's ``timezone``. Where each night being rehearsed stands (``NightClock``) comes with the snapshot and, when
it has moved (and on resuming while a night is rehearsed), in a ``clocks`` frame at most every ``CLOCKS_EVERY_S``,
so a page can show the night's clock and phase.

Keys: an operator or screen key in a header, a screen key as ``?token=``, a
session cookie (``app.access.sessions``; from this server's own pages only), or a first
message ``{"key": "..."}``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

import asyncpg
import msgspec
from fastapi import APIRouter
from starlette.websockets import WebSocket, WebSocketDisconnect

from alerts.evaluation import store
from alerts.evaluation.live import Announcement
from alerts.evaluation.views import AlertNow, AlertTransition, LiveAlert, NightClock, StoredAlert
from app.access.auth import READ_SCOPES, admit, authenticate, presented_key, session_key, still_allowed
from app.api.services import Alerts, Pool
from app.api.streams import StillAllowed, push_until_disconnect
from app.core.errors import ApiError

AUTH_TIMEOUT_S = 5.0
HEARTBEAT_S = 15.0
"""A heartbeat frame this often lets clients tell a quiet night from a dead connection."""
CLOCKS_EVERY_S = 1.0
"""The rehearsed nights' clocks and the firing alerts' latest values are looked at this often and sent when they
changed."""
RECENTLY_RESOLVED_S = 600.0
"""The snapshot lists the alerts resolved this recently (the on-call page's "Recently resolved"), so a reloaded page
still shows an emergency that resolved minutes ago."""
RECENTLY_RESOLVED_LIMIT = 100
PAGE = 500
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAVAILABLE = 1013
"""Websocket "try again later"."""

router = APIRouter(tags=["alerts"])


class SnapshotFrame(msgspec.Struct, tag_field="type", tag="snapshot"):
    """The firing alerts, and the ``seq`` they are current to (the first frame without ``after``), with the alerts
    resolved in the last ``RECENTLY_RESOLVED_S`` as stored."""

    seq: int
    alerts: list[LiveAlert]
    clocks: list[NightClock]
    resolved: list[StoredAlert] = []
    awaiting: list[str] = []
    """Resolved emergencies nobody has acknowledged (ids, listed in ``resolved`` however long ago they resolved):
    still on the wall's banner, so the page offers to acknowledge them."""


class ValuesFrame(msgspec.Struct, tag_field="type", tag="values"):
    """Firing alerts whose latest values changed since they were last sent: the value now, beside the one a
    transition frame gave when the alert fired (the wall shows the same latest values)."""

    alerts: list[AlertNow]


class ClocksFrame(msgspec.Struct, tag_field="type", tag="clocks"):
    """Where each night being rehearsed stands now (empty: none is)."""

    clocks: list[NightClock]


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
        clocks = alerts.night_clocks()
        if raw_after is None:
            async with pool.acquire() as conn:
                last = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM alert_transitions")
                awaiting = sorted(alerts.awaiting)
                resolved = await store.recently_resolved(conn, RECENTLY_RESOLVED_S, RECENTLY_RESOLVED_LIMIT, awaiting)
            firing = [alerts.render(a) for a in alerts.lifecycle.alerts.values() if a.status == "firing"]
            snapshot = SnapshotFrame(seq=last, alerts=firing, clocks=clocks, resolved=resolved, awaiting=awaiting)
            await websocket.send_text(msgspec.json.encode(snapshot).decode())
        else:
            last = int(raw_after)
            if clocks:
                await websocket.send_text(msgspec.json.encode(ClocksFrame(clocks=clocks)).decode())
        pusher = Pusher(websocket, pool, wake, alerts.night_clocks, clocks, alerts.retell, alerts.latest)
        pusher.shown = {a.id: a for a in alerts.latest()} if raw_after is None else {}
        await push_until_disconnect(websocket, pusher.run(last), allowed)
    finally:
        alerts.unsubscribe(wake)


@dataclass
class Pusher:
    """Sends one socket what it has not seen: stored transitions in ``seq`` order, the rehearsed nights' clocks
    when they moved, and heartbeats when nothing else was sent."""

    websocket: WebSocket
    pool: Any
    wake: asyncio.Queue[Announcement]
    night_clocks: Callable[[], list[NightClock]]
    clocks: list[NightClock]
    retell: Callable[[AlertTransition], AlertTransition]
    latest: Callable[[], list[AlertNow]]
    shown: dict[str, AlertNow] = field(default_factory=dict)
    """The latest values this socket has of each firing alert."""
    sent_at: float = field(default_factory=time.monotonic)
    clocks_at: float = field(default_factory=time.monotonic)

    async def send(self, frame: msgspec.Struct) -> None:
        await self.websocket.send_text(msgspec.json.encode(frame).decode())
        self.sent_at = time.monotonic()

    async def run(self, last: int) -> None:
        try:
            await self._from(last)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # The client reconnects with the last seq it saw, once the database is back.
            await self.websocket.close(
                code=CLOSE_UNAVAILABLE, reason="database unavailable; reconnect with ?after=<last seq>"
            )

    async def _from(self, last: int) -> None:
        while True:
            while True:
                async with self.pool.acquire() as conn:
                    rows = await store.history(conn, since=None, until=None, after_seq=last, limit=PAGE)
                for row in rows:
                    await self.send(frame(self.retell(row)))
                    last = row.seq
                if len(rows) < PAGE:
                    break
            while not await self._woken():
                await self._clocks()
                if time.monotonic() - self.sent_at >= HEARTBEAT_S:
                    await self.send(HeartbeatFrame(seq=last))
            await self._clocks()
            while not self.wake.empty():
                self.wake.get_nowait()

    async def _woken(self) -> bool:
        """Wait for a transition (True) or ``CLOCKS_EVERY_S`` (False)."""
        try:
            await asyncio.wait_for(self.wake.get(), CLOCKS_EVERY_S)
        except TimeoutError:
            return False
        return True

    async def _clocks(self) -> None:
        if time.monotonic() - self.clocks_at < CLOCKS_EVERY_S:
            return
        self.clocks_at = time.monotonic()
        clocks = self.night_clocks()
        if clocks != self.clocks:
            self.clocks = clocks
            await self.send(ClocksFrame(clocks=clocks))
        latest = {a.id: a for a in self.latest()}
        changed = [a for a in latest.values() if self.shown.get(a.id) != a]
        self.shown = latest
        if changed:
            await self.send(ValuesFrame(alerts=changed))
