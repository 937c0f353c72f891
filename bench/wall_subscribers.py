"""Protocol-level wall screens for ``warroom bench wall --rendered K``: what a wall page does on the wire, no renderer.

A wall page's Dash renderer talks to the server through Dash's SharedWorker
(``dash-ws-worker.js``), which owns the websocket (``/wall/_dash-ws-callback``)
and forwards the renderer's messages to it verbatim as
``{type, rendererId, requestId, payload}``. Playwright's ``page.on("websocket")``
does not see a SharedWorker's socket, so the first rendered screen records,
from an init script, every message its renderer posts to the worker's port
(``CAPTURE_SCRIPT``): the ``connect`` message (server URL, heartbeat interval)
and the ``callback_request`` that starts the persistent push callback. A
subscriber then does what that worker does for a page of its own:

- signs in the way a kiosk does: ``GET /wall/<campaign>?token=<screen key>``,
  keeping the ``warroom_wall_session`` cookie the server sets;
- opens the websocket with that cookie and the page's ``Origin`` (whose host
  is the ``Host``), as the browser does;
- sends the recorded ``callback_request`` frames (with a renderer id of its own);
- sends ``{"type": "heartbeat"}`` every heartbeat interval, as the worker does
  (``websockets`` answers protocol pings itself, as a browser does);
- reads every frame the server pushes, timestamping (``time.time()``) each new
  text of the paid-orders tile: in a ``set_props`` of ``kpi-tiles`` (the tiles
  whole) or of the tile value's own id (a leaf update).

Its changes have the rendered screens' shape (``[ms, None, text]``), so the
same matching turns them into latencies: POST → the first received frame
carrying a tile text that counts the probe.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.harness import BenchError

CAPTURE_SCRIPT = """
(() => {
  const sent = (window.__wallBenchSent = []);
  const Original = window.SharedWorker;
  if (!Original) return;
  window.SharedWorker = class extends Original {
    constructor(...args) {
      super(...args);
      const port = this.port;
      const post = port.postMessage.bind(port);
      port.postMessage = (message, ...rest) => {
        try { sent.push(JSON.parse(JSON.stringify(message))); } catch (e) { sent.push({ unrecorded: String(e) }); }
        return post(message, ...rest);
      };
    }
  };
})();
"""
"""Before the page's scripts: records every message the renderer posts to Dash's SharedWorker (which forwards them to
the websocket as they are)."""
CAPTURED_SCRIPT = "() => window.__wallBenchSent"
COOKIE = "warroom_wall_session"
CONNECT = "connect"
CALLBACK_REQUEST = "callback_request"
HEARTBEAT = json.dumps({"type": "heartbeat"})
TILES_ID = "kpi-tiles"
TILES_MARK = f'"{TILES_ID}'
"""A frame without this string carries neither the KPI tiles nor one of their leaves (ids ``kpi-tiles-…``): not
parsed."""
OPEN_TIMEOUT_S = 20.0
DEFAULT_HEARTBEAT_MS = 30_000
"""The worker's own default (``dash-ws-worker.js``) when the page passes none."""


@dataclass(frozen=True)
class Recording:
    """What a real page sent to start its push: where, how often it beats, and the frames themselves."""

    server_url: str
    heartbeat_s: float
    frames: list[dict[str, Any]]


def recording(sent: list[dict[str, Any]]) -> Recording:
    """The websocket frames a page's worker sent for the messages its renderer posted (``CAPTURE_SCRIPT``)."""
    connects = [m for m in sent if m.get("type") == CONNECT]
    if not connects:
        raise BenchError("the first rendered screen posted no connect message to Dash's worker: nothing to replay")
    config = connects[0].get("payload", {})
    frames = [
        {
            "type": CALLBACK_REQUEST,
            "rendererId": m.get("rendererId", ""),
            "requestId": m["requestId"],
            "payload": m["payload"],
        }
        for m in sent
        if m.get("type") == CALLBACK_REQUEST
    ]
    if not frames:
        raise BenchError("the first rendered screen sent no callback request over the websocket: nothing to replay")
    heartbeat_ms = config.get("heartbeatInterval")
    return Recording(
        str(config["serverUrl"]), (heartbeat_ms if isinstance(heartbeat_ms, int) else 30_000) / 1000, frames
    )


def tile_text(frame: str, kpi: str, value_id: str | None) -> tuple[str | None, str | None]:
    """The id of tile ``kpi``'s value and its latest text in a pushed frame, if the frame has it: the wall sends the
    KPI tiles whole (``set_props`` of ``kpi-tiles``, whose components carry their ids), then only the leaves that
    changed (``set_props`` of the value's own id, ``value_id``)."""
    decoded = json.loads(frame)
    text = None
    for message in decoded if isinstance(decoded, list) else [decoded]:
        if not isinstance(message, dict) or message.get("type") != "set_props":
            continue
        payload = message.get("payload", {})
        props = payload.get("props", {})
        if "children" not in props:
            continue
        if payload.get("componentId") == TILES_ID:
            tile = _find(props["children"], lambda p: p.get("data-kpi") == kpi)
            value = _find(tile.get("children"), lambda p: p.get("className") == "kpi-value") if tile else None
            if value is not None:
                value_id, text = value.get("id"), str(value.get("children"))
        elif value_id is not None and payload.get("componentId") == value_id:
            text = str(props["children"])
    return value_id, text


def _find(node: Any, wanted: Any) -> dict[str, Any] | None:
    """The props of the first component (depth first) whose props satisfy ``wanted``."""
    if isinstance(node, list):
        for child in node:
            if (found := _find(child, wanted)) is not None:
                return found
    elif isinstance(node, dict) and isinstance(props := node.get("props"), dict):
        if wanted(props):
            return props
        return _find(props.get("children"), wanted)
    return None


@dataclass
class Subscriber:
    """One protocol-level wall screen: its websocket and every change of the tile it received."""

    number: int
    connection: ClientConnection
    kpi: str
    changes: list[list[Any]] = field(default_factory=list)
    last: str | None = None
    value_id: str | None = None
    """The id of the tile's value on the page, from the tiles sent whole."""
    frames: int = 0
    bytes: int = 0
    heartbeat_acks: int = 0
    closed: str | None = None
    """Why the connection ended before the benchmark closed it (None: it stayed up to the end)."""
    closing: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def read(self) -> None:
        try:
            async for frame in self.connection:
                at = time.time()
                text = frame if isinstance(frame, str) else frame.decode()
                self.frames += 1
                self.bytes += len(text)
                if "heartbeat_ack" in text:
                    self.heartbeat_acks += 1
                if TILES_MARK in text:
                    self.value_id, value = tile_text(text, self.kpi, self.value_id)
                    if value is not None and value != self.last:
                        self.last = value
                        self.changes.append([at * 1000, None, value])
        finally:  # the benchmark closing it at the end is not a loss of connection
            code = self.connection.close_code
            if not self.closing:
                self.closed = f"closed ({code} {self.connection.close_reason})" if code is not None else "reader ended"

    async def beat(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self.connection.send(HEARTBEAT)

    async def close(self) -> None:
        self.closing = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.connection.close()


async def sign_in(page_url: str) -> str:
    """A kiosk's wall session: the cookie the server sets on the wall page's first load with ``?token=``."""
    async with httpx.AsyncClient(trust_env=False, timeout=OPEN_TIMEOUT_S) as client:
        response = await client.get(page_url)
    if response.status_code != 200:
        raise BenchError(f"the wall page answered {response.status_code} to a subscriber's sign-in")
    session = response.cookies.get(COOKIE)
    if not session:
        raise BenchError(f"the wall page set no {COOKIE} cookie for a subscriber")
    return session


async def subscribe(number: int, page_url: str, origin: str, record: Recording, kpi: str) -> Subscriber:
    """Sign in, open the wall's websocket as the page's worker does, start the push and read it."""
    session = await sign_in(page_url)
    connection = await connect(
        record.server_url,
        origin=origin,  # type: ignore[arg-type]  # websockets' Origin is a NewType of str
        additional_headers={"Cookie": f"{COOKIE}={session}"},
        proxy=None,
        ping_interval=None,  # a browser sends no protocol pings; the worker's heartbeat is a message
        max_size=None,
        open_timeout=OPEN_TIMEOUT_S,
    )
    subscriber = Subscriber(number, connection, kpi)
    renderer = str(uuid.uuid4())
    for frame in record.frames:
        await connection.send(json.dumps({**frame, "rendererId": renderer}))
    subscriber.tasks = [
        asyncio.create_task(subscriber.read()),
        asyncio.create_task(subscriber.beat(record.heartbeat_s)),
    ]
    return subscriber
