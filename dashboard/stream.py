"""The push loop of one connected wall: current numbers to the page through Dash ``set_props``, never polled.

It wakes as soon as the metrics engine has applied new events or the alerts
changed (not at the next published snapshot), or once a second for the clock
and heartbeat, then waits for the next tick of a ``RENDER_EVERY_S`` grid
shared by every page, so a burst of updates becomes one render, a page
renders at most five times a second, and all pages render at the same moments
(one shared rendering serves them all). It sends only what changed: a panel's tree whole once, then its changed
leaves (``leaves``), so the page's renderer redoes only those. Charts go in a
frame of their own after the numbers, so a chart's redraw never delays them.

Pages showing the same campaign in the same language share one rendering
(``Views``): it is computed once per change of the numbers, the alerts or the
second, whichever page asks first; every loop only compares it with what its
page shows. The GMV curve is recomputed at most every ``CURVE_INTERVAL_S``
and sent as a ``Patch`` when only its end moved.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from dash import set_props

from alerts.evaluation.live import AlertService
from alerts.evaluation.views import LiveAlert
from app.api.services import FullServices
from app.core.telemetry import WALL_PAGES
from app.metrics.live import LiveMetrics
from dashboard import curve as curve_math
from dashboard import i18n, leaves, minute, panels
from dashboard.access import WALL_PATH
from dashboard.i18n import Language
from dashboard.kpis import tiles
from dashboard.layout import SECTION_TITLES

HEARTBEAT_S = 1.0
"""Clock and heartbeat period; the page calls itself stale after 5 s without one."""
RENDER_EVERY_S = 0.2
"""After waking, a page renders at the next tick of this grid (on the process's monotonic clock, the same for every
page): everything that arrived meanwhile goes out in one render, at most five a second."""
VIEW_FRESH_S = 0.05
"""A shared rendering this recent serves a page even if the numbers moved since: pages rendering at the same tick
one after the other share it, though the engine applies events between them."""
CHART_GAP_S = 0.02
"""Each chart is sent this long after what went before it: longer than Dash's batching window (5 ms), so it
arrives in a frame (and a task of the page) of its own, after the numbers."""
CURVE_INTERVAL_S = 1.0
CURVE_REDRAW_S = 60.0
"""The whole figure is resent this often, so a late event that changed an old bin is drawn too."""
PANELS = ("kpi-tiles", "funnel-body", "inventory-body", "channels-body", "alerts-body", "alert-banner")
"""The containers whose children are component trees, sent leaf by leaf."""
DIFFS_KEPT = 256
"""Leaf updates computed between two shared renderings, reused by every page that goes from one to the other."""


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


@dataclass(frozen=True)
class View:
    """One rendering of a page's content, shared by every page showing it: the texts of single components, the
    panels' stamped trees, and the charts (the same objects as the previous view's when they did not change)."""

    key: tuple[Any, ...]
    texts: dict[str, str]
    trees: dict[str, Any]
    banner_class: str
    curve: curve_math.Curve | None
    minute: dict[str, Any] | None
    curve_at: float
    made_at: float


@dataclass
class Views:
    """The current ``View`` of each page (campaign, language), recomputed when the numbers, the alerts or the
    second change; and the leaf updates between two views, computed once for all pages."""

    metrics: LiveMetrics
    alerts: AlertService
    current: dict[Page, View] = field(default_factory=dict)
    diffs: dict[tuple[str, int, int], tuple[Any, Any, list[leaves.Update]]] = field(default_factory=dict)
    metrics_generation: int = 0
    alerts_generation: int = 0
    wakers: set[asyncio.Event] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.metrics.on_update(self._metrics_changed)
        self.alerts.on_change(self._alerts_changed)

    def _metrics_changed(self) -> None:
        self.metrics_generation += 1
        self._wake()

    def _alerts_changed(self) -> None:
        self.alerts_generation += 1
        self._wake()

    def _wake(self) -> None:
        for waker in self.wakers:
            waker.set()

    def listen(self) -> asyncio.Event:
        """An event set whenever the numbers or the alerts change; ``forget`` it when done."""
        waker = asyncio.Event()
        self.wakers.add(waker)
        return waker

    def forget(self, waker: asyncio.Event) -> None:
        self.wakers.discard(waker)

    def view(self, page: Page) -> View:
        """The page's view now: the shared one if nothing it shows has changed since it was computed."""
        wall = self.metrics.clock()
        key = (self.metrics_generation, self.alerts_generation, int(wall))
        previous = self.current.get(page)
        if previous is not None and (previous.key == key or time.monotonic() - previous.made_at < VIEW_FRESH_S):
            return previous
        view = self._render(page, key, wall, previous)
        self.current[page] = view
        return view

    def _render(self, page: Page, key: tuple[Any, ...], wall: float, previous: View | None) -> View:
        lang, engine = page.lang, self.metrics.engine
        snapshot = engine.snapshot(page.campaign, wall)
        now = engine.clock(page.campaign, wall).now
        texts = {**panels.header(snapshot, now, lang), "wall-notice": panels.notice(snapshot, lang)}
        alerts = campaign_alerts(self.alerts, page.campaign)
        banner, banner_class = panels.banner(self.alerts.banner(page.campaign), wall, lang)
        built = {
            "kpi-tiles": panels.kpi_tiles(tiles(snapshot, lang)),
            "funnel-body": panels.funnel(snapshot, lang),
            "inventory-body": panels.inventory(snapshot, lang),
            "channels-body": panels.channels(snapshot, lang),
            "alerts-body": panels.alert_feed(alerts, now, wall, lang),
            "alert-banner": banner,
        }
        trees = {}
        for name, tree in built.items():
            stamped = leaves.stamp(tree, name)
            before = previous.trees.get(name) if previous is not None else None
            trees[name] = before if before == stamped else stamped
        if previous is not None and time.monotonic() - previous.curve_at < CURVE_INTERVAL_S:
            return View(
                key, texts, trees, banner_class, previous.curve, previous.minute, previous.curve_at, time.monotonic()
            )
        gmv = float(snapshot.totals.gmv_paid)
        curve = curve_math.gmv_curve(engine, page.campaign, now, gmv, lang, wall, alerts)
        figure = minute.figure(engine, page.campaign, now, lang, alerts)
        if previous is not None:
            curve = previous.curve if previous.curve == curve else curve
            figure = previous.minute if previous.minute == figure else figure
        return View(key, texts, trees, banner_class, curve, figure, time.monotonic(), time.monotonic())

    def changes(self, container: str, old: Any, new: Any) -> list[leaves.Update]:
        """``leaves.changes``, computed once per pair of trees whichever page asks."""
        key = (container, id(old), id(new))
        kept = self.diffs.get(key)
        if kept is not None and kept[0] is old and kept[1] is new:
            return kept[2]
        found = leaves.changes(container, old, new)
        if len(self.diffs) >= DIFFS_KEPT:
            self.diffs.clear()
        self.diffs[key] = (old, new, found)  # the trees are kept with it, so their ids are not reused meanwhile
        return found


@dataclass
class WallPush:
    """One page's connection: sends what changed since the last send."""

    views: Views
    page: Page
    sent: dict[tuple[str, str], Any] = field(default_factory=dict)
    shown: dict[str, Any] = field(default_factory=dict)
    """Each panel's tree as the page has it."""
    curve: curve_math.Curve | None = None
    minute: dict[str, Any] | None = None
    redrawn_at: float = 0.0
    beat_second: int = -1
    beats: int = 0

    def send(self, component: str, prop: str, value: Any) -> None:
        """``set_props`` unless the page already shows exactly this."""
        if (component, prop) not in self.sent or self.sent[component, prop] != value:
            set_props(component, {prop: value})
            self.sent[component, prop] = value

    def titles(self) -> None:
        lang = self.page.lang
        for name, key in SECTION_TITLES.items():
            self.send(f"title-{name}", "children", i18n.text(key, lang))
        self.send("live-label", "children", i18n.text("live", lang))
        self.send("stale-label", "children", i18n.text("stale", lang))

    async def render(self) -> None:
        """The numbers and panels that changed, the heartbeat once a second, then each chart in a frame of its own."""
        view = self.views.view(self.page)
        for component, text in view.texts.items():
            self.send(component, "children", text)
        for name in PANELS:
            tree = view.trees[name]
            for component, props in self.views.changes(name, self.shown.get(name), tree):
                set_props(component, props)
            self.shown[name] = tree
        self.send("alert-banner", "className", view.banner_class)
        second = view.key[-1]
        if second != self.beat_second:
            self.beat_second, self.beats = second, self.beats + 1
            set_props("wall-heartbeat", {"children": str(self.beats)})
        if view.curve is not None and view.curve is not self.curve:
            await asyncio.sleep(CHART_GAP_S)
            self.draw_curve(view.curve)
        if view.minute is not None and view.minute is not self.minute:
            await asyncio.sleep(CHART_GAP_S)
            set_props("minute-curve", {"figure": view.minute})
            self.minute = view.minute

    def draw_curve(self, current: curve_math.Curve) -> None:
        """A Patch of the GMV curve's end, or the whole figure when the bins moved (and every ``CURVE_REDRAW_S``)."""
        recent = time.monotonic() - self.redrawn_at < CURVE_REDRAW_S
        patch = curve_math.update(self.curve, current) if recent else None
        if patch is None:
            set_props("gmv-curve", {"figure": curve_math.figure(current, self.page.lang)})
            self.redrawn_at = time.monotonic()
        else:
            set_props("gmv-curve", {"figure": patch})
        self.curve = current


async def run(services: FullServices, views: Views, pathname: str | None, search: str | None) -> None:
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
    wall = WallPush(views, page)
    changed = views.listen()
    WALL_PAGES.inc()
    try:
        wall.titles()
        while True:
            changed.clear()  # before rendering: a change while it renders wakes the next render
            await wall.render()
            try:
                async with asyncio.timeout(HEARTBEAT_S):
                    await changed.wait()
            except TimeoutError:
                pass  # nothing new: render again for the clock and the heartbeat
            else:
                await asyncio.sleep(RENDER_EVERY_S - time.monotonic() % RENDER_EVERY_S)
    finally:
        WALL_PAGES.dec()
        views.forget(changed)
