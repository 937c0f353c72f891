"""What the demo's terminal shows of its server: the campaign's numbers each second and every alert transition.

The terminal follows the server as any client does, with the demo's keys: ``GET /v1/campaigns/{id}/snapshot``
(screen key) for the night's clock, phase, events and GMV, and the ``/v1/alerts/stream`` websocket (operator key) for
each alert firing, escalating, resolving or being acknowledged, with the alert's own summary of that moment. The
stream is resumed after the last ``seq`` seen when its connection drops, so no transition is missed or told twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import connect

from app.drill.console import PLAIN_STATUS_EVERY_S, Console, Status, alert_line, night_clock, status_line
from dashboard.i18n import Language

STATUS_EVERY_S = 1.0
"""On a terminal the status line is refreshed this often; elsewhere only as often as it is printed."""
RATE_WINDOW_S = 5.0
"""Events per second are averaged over at least this long (and two looks): steady enough to read, recent enough to
show the burst."""
RECONNECT_S = 1.0
REQUEST_TIMEOUT_S = 5.0


def events_per_s(samples: deque[tuple[float, int]]) -> float | None:
    """The rate between the oldest and newest ``(monotonic second, events counted)`` sample, None with one sample."""
    if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
        return None
    (t0, n0), (t1, n1) = samples[0], samples[-1]
    return max(n1 - n0, 0) / (t1 - t0)


class Watch:
    """Keeps the console's status line current and writes a line for each alert transition."""

    def __init__(
        self,
        url: str,
        campaign: str,
        screen_key: str,
        operator_key: str,
        console: Console,
        lang: Language,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url.rstrip("/")
        self._campaign = campaign
        self._screen_key = screen_key
        self._operator_key = operator_key
        self._console = console
        self._lang = lang
        self._clock = clock
        self._every_s = STATUS_EVERY_S if console.tty else PLAIN_STATUS_EVERY_S
        self._samples: deque[tuple[float, int]] = deque()
        self.firing: dict[str, str] = {}
        """Firing alerts: id → severity."""
        self.last_seq: int | None = None
        self._status: Status | None = None

    async def run(self) -> None:
        """Until cancelled: the status line every ``STATUS_EVERY_S``, and the alert stream."""
        await asyncio.gather(self._statuses(), self._alerts())

    async def _statuses(self) -> None:
        async with httpx.AsyncClient(base_url=self._url, timeout=REQUEST_TIMEOUT_S) as http:
            while True:
                snapshot = await self._snapshot(http)
                if snapshot is not None:
                    self._status = self.status(snapshot)
                    self._console.status(status_line(self._status, self._lang))
                await asyncio.sleep(self._every_s)

    async def _snapshot(self, http: httpx.AsyncClient) -> dict[str, Any] | None:
        try:
            response = await http.get(f"/v1/campaigns/{self._campaign}/snapshot", params={"token": self._screen_key})
        except httpx.TransportError:
            return None
        return response.json() if response.status_code == 200 else None

    def status(self, snapshot: dict[str, Any]) -> Status:
        """The status of a campaign snapshot, with the events per second since the oldest sample kept."""
        now = self._clock()
        self._samples.append((now, snapshot["events"]))
        while len(self._samples) > 2 and self._samples[1][0] <= now - RATE_WINDOW_S:
            self._samples.popleft()
        return Status(
            night_clock=night_clock(datetime.fromisoformat(snapshot["as_of"]), snapshot["timezone"]),
            rehearsal=snapshot["clock"] == "replay",
            phase=snapshot["phase"],
            events_per_s=events_per_s(self._samples),
            gmv=snapshot["totals"]["gmv_paid"],
            currency=snapshot["currency"],
            alerts=self._firing_by_severity(),
        )

    def _firing_by_severity(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for severity in self.firing.values():
            counts[severity] = counts.get(severity, 0) + 1
        return counts

    async def _alerts(self) -> None:
        while True:
            query = "" if self.last_seq is None else f"?after={self.last_seq}"
            try:
                async with connect(
                    f"ws{self._url.removeprefix('http')}/v1/alerts/stream{query}",
                    additional_headers={"X-API-Key": self._operator_key},
                ) as stream:
                    async for message in stream:
                        self.take(json.loads(message))
            except (OSError, websockets.WebSocketException):
                pass
            await asyncio.sleep(RECONNECT_S)

    def take(self, frame: dict[str, Any]) -> None:
        """One frame of the alert stream: the firing alerts of a snapshot, or a transition told on the console."""
        kind = frame.get("type")
        if kind == "snapshot":
            self.firing = {alert["id"]: alert["severity"] for alert in frame["alerts"]}
        elif kind == "transition":
            if frame["kind"] == "resolved":
                self.firing.pop(frame["id"], None)
            elif frame["kind"] != "acknowledged":
                self.firing[frame["id"]] = frame["severity"]
            self._console.line(alert_line(frame, self._lang))
            if self._status is not None:  # the count below agrees with the line just told
                self._status = dataclasses.replace(self._status, alerts=self._firing_by_severity())
                self._console.status(status_line(self._status, self._lang))
        if "seq" in frame:
            self.last_seq = frame["seq"]
