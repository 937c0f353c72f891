"""The push loop of one connected wall: current numbers to the page through Dash ``set_props``, never polled.

It wakes on a metrics update (at most five a second), an alert transition,
or once a second for the clock and heartbeat, then waits
``COALESCE_S`` so a burst of updates becomes one render, and sends only the
components whose content changed. The GMV curve is recomputed at most every
``CURVE_INTERVAL_S`` and sent as a ``Patch`` when only its end moved.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from dash import set_props
from plotly.io.json import to_json_plotly

from alerts.evaluation.live import AlertService
from alerts.evaluation.views import LiveAlert
from app.api.services import FullServices
from app.core.telemetry import WALL_PAGES
from app.metrics.live import LiveMetrics
from app.metrics.snapshot import Snapshot
from dashboard import curve as curve_math
from dashboard import i18n, minute, panels
from dashboard.access import WALL_PATH
from dashboard.i18n import Language
from dashboard.kpis import tiles
from dashboard.layout import SECTION_TITLES

HEARTBEAT_S = 1.0
"""Clock and heartbeat period; the page calls itself stale after 5 s without one."""
COALESCE_S = 0.25
"""After waking, wait this long so everything that arrived meanwhile goes out in one render (≤ 4 per second)."""
CURVE_INTERVAL_S = 1.0
CURVE_REDRAW_S = 60.0
"""The whole figure is resent this often, so a late event that changed an old bin is drawn too."""


@dataclass(frozen=True)
class Page:
    """What one wall shows: a campaign, in a language."""

    campaign: str
    lang: Language


def page_from_url(
    pathname: str | None,
    search: str | None,
    default_lang: Language,
    defined: list[str],
    default_campaign: str,
    running: list[str],
) -> Page:
    """The campaign from ``/wall/<campaign>`` and the language from ``?lang=``.

    Plain ``/wall`` shows the configured default campaign if it is defined,
    else the first one running now, else the first defined one.
    """
    rest = (pathname or "").removeprefix(WALL_PATH).strip("/")
    campaign = rest.split("/", 1)[0]
    if not campaign:
        campaign = default_campaign if default_campaign in defined else (running or defined or [default_campaign])[0]
    query = parse_qs((search or "").lstrip("?"))
    return Page(campaign, i18n.language(next(iter(query.get("lang", [])), None), default_lang))


def campaign_alerts(service: AlertService, campaign: str) -> list[LiveAlert]:
    """Firing alerts about this campaign (or about no campaign in particular), as the alert API renders them."""
    return [
        service.render(alert)
        for alert in list(service.lifecycle.alerts.values())
        if alert.status == "firing" and alert.labels.get("campaign", campaign) == campaign
    ]


@dataclass
class WallPush:
    """One page's connection: renders the panels and sends what changed since the last send."""

    metrics: LiveMetrics
    alerts: AlertService
    page: Page
    sent: dict[tuple[str, str], str] = field(default_factory=dict)
    curve: curve_math.Curve | None = None
    curve_at: float = 0.0
    redrawn_at: float = 0.0
    beats: int = 0

    def send(self, component: str, prop: str, value: Any) -> None:
        """``set_props`` unless the page already shows exactly this."""
        encoded = to_json_plotly(value)
        if self.sent.get((component, prop)) != encoded:
            set_props(component, {prop: value})
            self.sent[(component, prop)] = encoded

    def titles(self) -> None:
        lang = self.page.lang
        for name, key in SECTION_TITLES.items():
            self.send(f"title-{name}", "children", i18n.text(key, lang))
        self.send("live-label", "children", i18n.text("live", lang))
        self.send("stale-label", "children", i18n.text("stale", lang))

    def render(self) -> None:
        lang = self.page.lang
        wall = self.metrics.clock()
        snapshot = self.metrics.engine.snapshot(self.page.campaign, wall)
        now = self.metrics.engine.clock(self.page.campaign, wall).now
        for component, value in panels.header(snapshot, now, lang).items():
            self.send(component, "children", value)
        self.send("wall-notice", "children", panels.notice(snapshot, lang))
        self.send("kpi-tiles", "children", panels.kpi_tiles(tiles(snapshot, lang)))
        self.send("funnel-body", "children", panels.funnel(snapshot, lang))
        self.send("inventory-body", "children", panels.inventory(snapshot, lang))
        self.send("channels-body", "children", panels.channels(snapshot, lang))
        alerts = campaign_alerts(self.alerts, self.page.campaign)
        self.send("alerts-body", "children", panels.alert_feed(alerts, now, wall, lang))
        banner, banner_class = panels.banner(self.alerts.banner(self.page.campaign), wall, lang)
        self.send("alert-banner", "children", banner)
        self.send("alert-banner", "className", banner_class)
        if time.monotonic() - self.curve_at >= CURVE_INTERVAL_S:
            self.draw_curve(snapshot, now, wall, alerts)
            self.send(
                "minute-curve", "figure", minute.figure(self.metrics.engine, self.page.campaign, now, lang, alerts)
            )
        self.beats += 1
        set_props("wall-heartbeat", {"children": str(self.beats)})

    def draw_curve(self, snapshot: Snapshot, now: float, wall: float, alerts: list[LiveAlert]) -> None:
        engine = self.metrics.engine
        gmv = float(snapshot.totals.gmv_paid)
        current = curve_math.gmv_curve(engine, self.page.campaign, now, gmv, self.page.lang, wall, alerts)
        patch = curve_math.update(self.curve, current) if time.monotonic() - self.redrawn_at < CURVE_REDRAW_S else None
        if patch is None:
            set_props("gmv-curve", {"figure": curve_math.figure(current, self.page.lang)})
            self.redrawn_at = time.monotonic()
        else:
            set_props("gmv-curve", {"figure": patch})
        self.curve, self.curve_at = current, time.monotonic()


async def _next(queues: list[asyncio.Queue[Any]]) -> None:
    """Wait until any queue has an item (left in place); the caller bounds the wait with ``asyncio.timeout``."""
    if any(not q.empty() for q in queues):
        return
    getters = [asyncio.ensure_future(q.get()) for q in queues]
    try:
        await asyncio.wait(getters, return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when the caller's timeout cancels the wait: an item already taken goes back
        for getter, queue in zip(getters, queues, strict=True):
            if getter.done() and not getter.cancelled():
                queue.put_nowait(getter.result())
            else:
                getter.cancel()


def _drain(queue: asyncio.Queue[Any]) -> None:
    while not queue.empty():
        queue.get_nowait()


async def run(services: FullServices, pathname: str | None, search: str | None) -> None:
    """Push to one page until its websocket closes (the task is then cancelled)."""
    engine = services.metrics.engine
    now = services.metrics.clock()
    running = [c.id for c in engine.campaigns.values() if engine.judged(c.id, engine.clock(c.id, now))]
    page = page_from_url(
        pathname,
        search,
        services.settings.wall_language,
        sorted(engine.campaigns),
        services.settings.default_campaign,
        running,
    )
    metrics = services.metrics.subscribe(page.campaign)
    alerts = services.alerts.subscribe()
    wall = WallPush(services.metrics, services.alerts, page)
    WALL_PAGES.inc()
    try:
        wall.titles()
        while True:
            wall.render()
            try:
                async with asyncio.timeout(HEARTBEAT_S):
                    await _next([metrics.queue, alerts])
            except TimeoutError:
                pass  # nothing new: render again as a heartbeat
            else:
                await asyncio.sleep(COALESCE_S)
            _drain(metrics.queue)
            _drain(alerts)
    finally:
        WALL_PAGES.dec()
        services.metrics.unsubscribe(metrics)
        services.alerts.unsubscribe(alerts)
