"""``warroom bench wall``: from an event's POST to the changed number on every wall screen, in real browsers.

A throw-away embedded PostgreSQL, the demo campaign saved (its burst on now),
the real server in its own process with the default rule pack, and
``--screens`` walls (``/wall/<campaign>``, zh, 1920x1080) in headless
Chromium: one browser, one context per screen, so each screen has its own
profile, renderer process and websocket (tabs of one profile would share a
single websocket through a SharedWorker); the server's ``warroom_wall_pages``
gauge must count every one of them before anything is measured.

Of the ``--screens`` walls, ``--rendered`` (default 2) are real pages as
described here; the others are protocol-level subscribers
(``bench.wall_subscribers``): each signs in with the screen key as a kiosk
does, opens its own websocket to ``/wall/_dash-ws-callback`` and sends the
messages the first rendered page's renderer sent to start its push, then
reads every frame, timing the probes to the first frame carrying the tile's
new text. The server carries all of them (the gauge counts all of them); only
the rendered ones cost this machine a renderer. ``--rendered`` equal to
``--screens`` renders every screen, as before.

The value watched is the paid-orders KPI tile
(``#kpi-tiles [data-kpi="orders_paid"] .kpi-value``). The background load,
``--rate`` events/s posted through the ingest API for the whole run, is the
burst's traffic without its paid orders (visits, product views, carts), so
the tile moves only with the probes and its next text is known: after the
``n``-th ``order_paid`` probe it reads ``compact(n)``, formatted by the wall's
own function. Every other panel (UV, conversion, funnel, channels, curve,
alerts) keeps changing with the background, so each push renders as much as
during a real burst. ``--probes`` probes are posted one at a time, about
``--seconds / --probes`` apart (jittered so they do not lock onto the push
loop's cadence).

In every page a MutationObserver on ``#kpi-tiles`` timestamps each new text
of the tile, and the first animation frame after it, with
``performance.timeOrigin + performance.now()``. The benchmark stamps each
probe with ``time.time()`` just before writing its POST. Both read the same
system clock on this one machine (``timeOrigin`` is that clock at navigation,
``now()`` monotonic since); the offset between them is measured in every page
before and after the run and reported (``clock_skew_ms_max``, read within
``clock_check_bound_ms_max``: half the quickest round trip), so a latency
is trusted only to that bound. The probes are posted from Python rather than
from a page's ``fetch`` so that posting costs no page any main-thread time
and every page is measured the same way. A sample is one (screen, probe):
the time from the probe's POST to the first text on that screen that counts
it (a push covering two probes ends both samples).

A PerformanceObserver (``longtask``, buffered, installed before the page's
own scripts) records every task over 50 ms in every page: those while the
load runs are reported (count over 200 ms, the longest); those while the page
loaded (plotly.js) apart. A long task's duration is wall time, so on a
crowded machine it also counts the time its renderer waited for a core: a
Chromium trace of every page's main thread over ``TRACE_S`` in the middle of
the probes gives each long task's CPU time beside it (``traced_long_tasks``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

from app.campaigns.model import Campaign
from bench import harness, loadclient
from bench import wall_subscribers as subs
from bench.chromium import CHROMIUM, HEADLESS_ARGS
from bench.harness import BenchError, CpuMeter, step
from bench.metrics import (
    MAX_RATE,
    RULES_DIR,
    SEED,
    TYPE_WEIGHTS,
    DemoEvents,
    demo_campaign,
    paced_send,
    percentile_ms,
    post_events,
    prepare,
    serving,
)
from dashboard.numbers import compact

CHROMIUM_ARGS = [
    *HEADLESS_ARGS,
    "--disable-renderer-backgrounding",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
]
"""The shared headless flags, and no throttling of pages Chromium thinks are hidden: a wall is always shown."""
VIEWPORT = {"width": 1920, "height": 1080}
LANG = "zh"
KPI = "orders_paid"
OBSERVED_ID = "kpi-tiles"
VALUE_SELECTOR = f'#{OBSERVED_ID} [data-kpi="{KPI}"] .kpi-value'
"""The element the benchmark relies on: the paid-orders tile's number inside the KPI row."""
CHART_SELECTOR = ".js-plotly-plot .main-svg"
"""A drawn plotly chart: the page has loaded plotly.js (a stall of its own) before anything is measured."""
BACKGROUND_WEIGHTS = {name: weight for name, weight in TYPE_WEIGHTS.items() if name != "order_paid"}
PROBE_CHANNEL = "tmall"
WARMUP_S = 3.0
"""Background load before the first probe, so the engine and every page have met it."""
WARMUP_PROBES = 2
"""Probes posted during the warm-up and not measured: the first paid orders draw new tile content."""
JITTER = 0.5
"""Each probe is due at ``i * interval`` plus up to this fraction of an interval either way."""
PAGE_OPEN_TIMEOUT_MS = 180_000
"""Generous: on two cores the walls already open (and other users' work) slow each new page's load a lot."""
SETTLE_TIMEOUT_S = 20.0
"""After the last probe, how long every screen gets to show the final count before the missing are counted."""
SETTLE_POLL_S = 0.5
GAUGE_TIMEOUT_S = 10.0
EVALUATE_TIMEOUT_S = 180.0
"""A starved wall once took over 60 s to answer with 20 walls open: late is measured, only a hang is not."""
GAUGE = b"warroom_wall_pages "
CLOCK_TRIES = 5
LONG_TASK_LIMIT_MS = 200.0
MAX_SCREENS = 50
MAX_PROBES = 5_000
MAX_SECONDS = 600.0
MIN_INTERVAL_S = 0.05
TARGET_SCREENS = 20
TARGET_RENDERED = 2
"""Screens rendered in Chromium by default; the others are protocol-level subscribers (``bench.wall_subscribers``)."""
TARGET_RATE = 5_000.0
TARGET_P95_MS = 1_000.0
TARGET_MIN_PROBES = 100
RATE_TOLERANCE = 0.99

INIT_SCRIPT = """
(() => {
  const bench = (window.__wallBench = { longTasks: [], changes: [], last: null, observing: false });
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      bench.longTasks.push([performance.timeOrigin + entry.startTime, entry.duration]);
    }
  }).observe({ type: "longtask", buffered: true });
})();
"""
"""Runs before the page's own scripts: every long task of the page is recorded, its load included."""
OBSERVE_SCRIPT = """
([rootId, selector]) => {
  const bench = window.__wallBench;
  const now = () => performance.timeOrigin + performance.now();
  const read = () => { const el = document.querySelector(selector); return el ? el.textContent : null; };
  bench.last = read();
  new MutationObserver(() => {
    const text = read();
    if (text === bench.last) return;
    bench.last = text;
    const change = [now(), null, text];
    bench.changes.push(change);
    requestAnimationFrame(() => { change[1] = now(); });
  }).observe(document.getElementById(rootId), { childList: true, subtree: true, characterData: true });
  bench.observing = true;
  return bench.last;
}
"""
"""Timestamps every new text of the watched value (the DOM change, then the animation frame that paints it)."""
READY_SELECTORS = ['html[data-wall="live"]', VALUE_SELECTOR, CHART_SELECTOR]
READY_SCRIPT = "(selectors) => selectors.every((selector) => document.querySelector(selector) !== null)"
"""Polled from here rather than with Playwright's waits, which poll on animation frames: with many 1080p pages
sharing two cores a page's frames can starve for minutes while its scripts still run."""
ALERTS_SCRIPT = """
() => ({
  alerts: document.querySelectorAll("#alerts-body [data-alert]").length,
  banner: !document.getElementById("alert-banner").classList.contains("hidden"),
  stale: document.documentElement.dataset.wall !== "live",
})
"""
"""What else the page showed at the end: the alert rows, whether the (pulsing) emergency banner was up, stale or not."""
PAGE_CLOCK = "() => performance.timeOrigin + performance.now()"
TRACE_S = 10.0
"""A Chromium trace this long, from the middle of the probes, tells long tasks' CPU time from their wall time."""
TRACE_CATEGORIES = ["toplevel"]
"""Only the scheduler's task events: each carries its wall (``dur``) and thread CPU (``tdur``) time, cheaply."""
MAIN_THREAD = "CrRendererMain"
TASK_EVENT = "ThreadControllerImpl::RunTask"
LONG_TASK_MS = 50.0


@dataclass(frozen=True)
class Parameters:
    screens: int
    rate: float
    probes: int
    seconds: float
    rendered: int = TARGET_RENDERED

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Parameters:
        harness.check_option("screens", args.screens, 1, MAX_SCREENS)
        harness.check_option("rate", args.rate, 0, MAX_RATE)
        harness.check_option("probes", args.probes, 1, MAX_PROBES)
        harness.check_option("seconds", args.seconds, 0, MAX_SECONDS, low_exclusive=True)
        harness.check_option("rendered", args.rendered, 1, args.screens)
        if args.seconds / args.probes < MIN_INTERVAL_S:
            raise BenchError(f"--seconds / --probes must leave at least {MIN_INTERVAL_S:g}s between probes")
        return cls(args.screens, args.rate, args.probes, args.seconds, args.rendered)


@dataclass
class Probe:
    """One paid order posted to move the tile; ``count`` is the tile's value once it is applied."""

    count: int
    sent: float = 0.0
    """Wall time just before the POST was written."""
    answered: float = 0.0


@dataclass
class Screen:
    """One wall: its own browser context (profile), page and what its page recorded."""

    number: int
    context: BrowserContext
    page: Page
    reloads_while_opening: int
    skews_ms: list[tuple[float, float]] = field(default_factory=list)
    """(page clock − this process's clock, ± bound) in ms, before and after the run."""
    changes: list[list[Any]] = field(default_factory=list)
    long_tasks: list[list[float]] = field(default_factory=list)
    at_end: dict[str, Any] = field(default_factory=dict)


def expected_texts(total: int) -> dict[str, int]:
    """The tile's text after each number of paid orders up to ``total``, by the wall's own formatter."""
    return {compact(count, LANG): count for count in range(total + 1)}


@dataclass
class ScreenSamples:
    """One screen's latencies in seconds, one per probe it showed, and what did not fit."""

    dom_s: list[float] = field(default_factory=list)
    frame_s: list[float] = field(default_factory=list)
    missed: int = 0
    unexpected: list[str] = field(default_factory=list)


def match(changes: list[list[Any]], probes: list[Probe], texts: dict[str, int]) -> ScreenSamples:
    """Each probe's latency on one screen: from its POST to the first recorded text whose count includes it.

    A text that is not the count of some number of probes, or a count lower
    than one already shown, is unexpected: something else moved the value.
    """
    samples = ScreenSamples()
    shown = -1
    waiting = sorted(probes, key=lambda p: p.count)
    for dom, frame, text in changes:
        count = texts.get(text)
        if count is None or count < shown:
            samples.unexpected.append(text)
            continue
        shown = count
        while waiting and waiting[0].count <= count:
            probe = waiting.pop(0)
            samples.dom_s.append(dom / 1000 - probe.sent)
            samples.frame_s.append((frame if frame is not None else dom) / 1000 - probe.sent)
    samples.missed = len(waiting)
    return samples


async def answer(page: Page, script: str, arg: Any = None) -> Any:
    """``page.evaluate`` within ``EVALUATE_TIMEOUT_S``: a BenchError naming the page rather than a silent hang."""
    try:
        async with asyncio.timeout(EVALUATE_TIMEOUT_S):
            return await page.evaluate(script, arg)
    except TimeoutError:
        raise BenchError(
            f"the wall page {page.url.split('?', 1)[0]} did not answer within {EVALUATE_TIMEOUT_S:g}s"
        ) from None


async def _page_skew_ms(page: Page) -> tuple[float, float]:
    """Page clock minus this process's clock, and half the round trip it was read in (its error bound), from the
    quickest of a few round trips."""
    best: tuple[float, float] | None = None
    for _ in range(CLOCK_TRIES):
        before = time.time()
        page_ms = await answer(page, PAGE_CLOCK)
        after = time.time()
        if best is None or (after - before) * 500 < best[1]:
            best = (page_ms - (before + after) / 2 * 1000, (after - before) * 500)
    assert best is not None
    return best


async def _open(browser: Browser, number: int, url: str, *, capture: bool = False) -> Screen:
    """A wall in a fresh profile, live (heartbeats arrive), its chart drawn and the tile observed; with ``capture``
    the messages its renderer sends Dash's websocket worker are recorded (``subs.CAPTURE_SCRIPT``)."""
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]  # a ViewportSize dict
    await context.add_init_script(INIT_SCRIPT)
    if capture:
        await context.add_init_script(subs.CAPTURE_SCRIPT)
    page = await context.new_page()
    page.set_default_timeout(PAGE_OPEN_TIMEOUT_MS)
    reloads = 0
    await page.goto(url, wait_until="domcontentloaded")
    for _ in range(math.ceil(PAGE_OPEN_TIMEOUT_MS / 1000 / SETTLE_POLL_S)):
        try:
            if await answer(page, READY_SCRIPT, READY_SELECTORS):
                break
        except PlaywrightError:  # the page's watchdog reloaded it: no heartbeat for 35 s while it loaded
            reloads += 1
        await asyncio.sleep(SETTLE_POLL_S)
    else:
        raise BenchError(f"screen {number + 1} was not live within {PAGE_OPEN_TIMEOUT_MS / 1000:g}s")
    await answer(page, OBSERVE_SCRIPT, [OBSERVED_ID, VALUE_SELECTOR])
    return Screen(number, context, page, reloads)


async def _wall_pages(port: int) -> int:
    """The server's ``warroom_wall_pages`` gauge (its ``/metrics``, open to 127.0.0.1 for this run)."""
    connection = await loadclient.Connection.open(port)
    try:
        status, body = await connection.exchange(loadclient.get_request("/metrics"))
    finally:
        connection.close()
    if status != 200:
        raise BenchError(f"GET /metrics answered {status}: {body[:300]!r}")
    line = next((line for line in body.splitlines() if line.startswith(GAUGE)), None)
    if line is None:
        raise BenchError("the server's /metrics has no warroom_wall_pages gauge")
    return round(float(line[len(GAUGE) :]))


async def _await_wall_pages(port: int, expected: int) -> int:
    """The gauge once it counts ``expected`` pages (a page's push loop starts just after it loads)."""
    for _ in range(math.ceil(GAUGE_TIMEOUT_S / SETTLE_POLL_S)):
        if (seen := await _wall_pages(port)) == expected:
            return seen
        await asyncio.sleep(SETTLE_POLL_S)
    raise BenchError(f"the server counts {seen} wall pages for {expected} screens: screens share a connection")
    return seen


def probe_body(campaign: Campaign, number: int) -> bytes:
    """``{"events": [one order_paid]}`` for probe ``number``: a unique event and order, a catalog SKU at its price."""
    sku = campaign.skus[number % len(campaign.skus)]
    event = {
        "event_id": f"wall-probe-{number}",
        "type": "order_paid",
        "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "campaign": campaign.id,
        "channel": PROBE_CHANNEL,
        "user_id": f"u-wall-probe-{number}",
        "order_id": f"wall-probe-order-{number}",
        "sku": sku.sku,
        "quantity": 1,
        "amount": float(sku.price or 1),
    }
    return json.dumps({"events": [event]}).encode()


async def _post_probe(port: int, token: str, campaign: Campaign, probe: Probe) -> None:
    """POST one probe on a connection of its own (an idle keep-alive one is closed by the server after 5 s),
    stamped once the connection is open, so only the request itself is timed."""
    body = probe_body(campaign, probe.count)
    connection = await loadclient.Connection.open(port)
    try:
        probe.sent = time.time()
        if await post_events(connection, token, body) != 1:
            raise BenchError(f"probe {probe.count} was not accepted")
        probe.answered = time.time()
    finally:
        connection.close()


async def _shown_everywhere(
    screens: list[Screen], text: str, timeout_s: float, subscribers: list[subs.Subscriber] | None = None
) -> None:
    """Wait until every page shows ``text`` and every subscriber received it (or ``timeout_s`` passed: the screens
    still behind count as missed)."""
    deadline = time.monotonic() + timeout_s
    pending = list(screens)
    waiting = list(subscribers or [])
    while waiting and time.monotonic() < deadline:
        waiting = [s for s in waiting if s.last != text]
        if waiting:
            await asyncio.sleep(SETTLE_POLL_S)
    while pending and time.monotonic() < deadline:
        shown = await asyncio.gather(*(answer(s.page, "() => window.__wallBench.last") for s in pending))
        pending = [s for s, last in zip(pending, shown, strict=True) if last != text]
        if pending:
            await asyncio.sleep(SETTLE_POLL_S)


async def _collect(screen: Screen) -> None:
    recorded = await answer(screen.page, "() => window.__wallBench")
    if not recorded["observing"]:
        raise BenchError(f"screen {screen.number} reloaded during the run (its watchdog saw no pushes)")
    screen.changes = recorded["changes"]
    screen.long_tasks = recorded["longTasks"]
    screen.at_end = await answer(screen.page, ALERTS_SCRIPT)


class _TraceEvent(msgspec.Struct):
    name: str = ""
    ph: str = ""
    pid: int = 0
    tid: int = 0
    dur: float = 0.0
    tdur: float = 0.0
    args: dict[str, Any] = {}


class _Trace(msgspec.Struct):
    traceEvents: list[_TraceEvent]  # noqa: N815  # the trace format's own name


def traced_long_tasks(trace: bytes) -> dict[str, Any]:
    """The pages' main-thread tasks over ``LONG_TASK_MS`` of wall time in a Chromium trace, with their CPU time.

    A task that takes 600 ms on the clock but 60 ms of its thread's CPU was
    waiting for a core (other processes ran), not doing 600 ms of work.
    """
    events = msgspec.json.decode(trace, type=_Trace).traceEvents
    main = {(e.pid, e.tid) for e in events if e.name == "thread_name" and e.args.get("name") == MAIN_THREAD}
    tasks = [
        (e.dur / 1000, e.tdur / 1000)
        for e in events
        if e.name == TASK_EVENT and e.ph == "X" and (e.pid, e.tid) in main and e.dur / 1000 > LONG_TASK_MS
    ]
    return {
        "renderers": len(main),
        "tasks_over_50ms": len(tasks),
        "over_200ms_wall": sum(wall > LONG_TASK_LIMIT_MS for wall, _ in tasks),
        "over_200ms_cpu": sum(cpu > LONG_TASK_LIMIT_MS for _, cpu in tasks),
        "max_wall_ms": round(max((wall for wall, _ in tasks), default=0.0), 1),
        "max_cpu_ms": round(max((cpu for _, cpu in tasks), default=0.0), 1),
    }


async def _trace(browser: Browser, path: Path, after_s: float, seconds: float) -> dict[str, Any]:
    """Trace every page's scheduler for ``seconds`` from ``after_s`` on; the long tasks found, with the window."""
    await asyncio.sleep(after_s)
    await browser.start_tracing(path=str(path), categories=TRACE_CATEGORIES)
    await asyncio.sleep(seconds)
    await browser.stop_tracing()
    return {"window_s": seconds, **traced_long_tasks(await asyncio.to_thread(path.read_bytes))}


@dataclass
class Run:
    """What the measured part produced, for the report."""

    screens: list[Screen]
    subscribers: list[subs.Subscriber]
    probes: list[Probe]
    wall_pages: int
    wall_pages_after: int
    load_start: float
    load_end: float
    background: dict[str, Any]
    cores: dict[str, float]
    browser_version: str
    traced: dict[str, Any]


async def _measure(params: Parameters, workdir: Path, dsn: str, postmaster: int) -> dict[str, Any]:
    campaign = demo_campaign()
    machine, ingest_token, screen_token = await prepare(dsn, campaign)
    meter = CpuMeter(postmaster)
    env = {"WARROOM_RULES_DIR": str(RULES_DIR), "WARROOM_METRICS_ALLOW": f"{loadclient.HOST}/32"}
    async with serving(dsn, workdir, env) as server, async_playwright() as playwright:
        meter.server_pids = frozenset({server.pid})
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            run = await _run(
                params, workdir, campaign, server.port, server.pid, ingest_token, screen_token, browser, meter
            )
        finally:
            await browser.close()
    return _report(params, run, machine)


async def _run(
    params: Parameters,
    workdir: Path,
    campaign: Campaign,
    port: int,
    server_pid: int,
    ingest_token: str,
    screen_token: str,
    browser: Browser,
    meter: CpuMeter,
) -> Run:
    url = f"http://{loadclient.HOST}:{port}/wall/{campaign.id}?token={screen_token}&lang={LANG}"
    screens: list[Screen] = []
    subscribers: list[subs.Subscriber] = []
    with step(f"opening {params.rendered} rendered wall screens (one browser context each)") as notes:
        for number in range(params.rendered):
            opened = time.perf_counter()
            screens.append(await _open(browser, number, url, capture=number == 0))
            print(
                f"  screen {number + 1}/{params.rendered} live in {time.perf_counter() - opened:.1f}s",
                file=sys.stderr,
                flush=True,
            )
        wall_pages = await _await_wall_pages(port, params.rendered)
        notes.append(f"the server counts {wall_pages} wall pages")
    record = subs.recording(await answer(screens[0].page, subs.CAPTURED_SCRIPT))
    try:
        return await _run_with(
            params, workdir, campaign, port, server_pid, ingest_token, browser, meter, url, screens, subscribers, record
        )
    finally:
        await asyncio.gather(*(s.close() for s in subscribers), return_exceptions=True)


async def _run_with(
    params: Parameters,
    workdir: Path,
    campaign: Campaign,
    port: int,
    server_pid: int,
    ingest_token: str,
    browser: Browser,
    meter: CpuMeter,
    url: str,
    screens: list[Screen],
    subscribers: list[subs.Subscriber],
    record: subs.Recording,
) -> Run:
    count = params.screens - params.rendered
    with step(
        f"opening {count} subscriber screens (the page's {len(record.frames)} websocket message(s) replayed)"
    ) as notes:
        origin = f"http://{loadclient.HOST}:{port}"
        for number in range(params.rendered, params.screens):
            subscribers.append(await subs.subscribe(number, url, origin, record, KPI))
        wall_pages = await _await_wall_pages(port, params.screens)
        notes.append(f"the server counts {wall_pages} wall pages")
    for screen in screens:
        screen.skews_ms.append(await _page_skew_ms(screen.page))
    warmup = [Probe(count) for count in range(1, WARMUP_PROBES + 1)]
    probes = [Probe(WARMUP_PROBES + number) for number in range(1, params.probes + 1)]
    background = await loadclient.Connection.open(port)
    stop = asyncio.Event()
    source = DemoEvents(campaign, "wall-load", SEED, BACKGROUND_WEIGHTS)
    long_run = WARMUP_S + params.seconds + SETTLE_TIMEOUT_S + MAX_SECONDS
    load_start = time.time()
    load = (
        asyncio.create_task(paced_send(background, ingest_token, source, params.rate, long_run, stop=stop))
        if params.rate
        else None
    )
    rng = random.Random(SEED)
    tracing: asyncio.Task[dict[str, Any]] | None = None
    try:
        with step(f"{WARMUP_S:g}s of background load at {params.rate:,.0f} events/s, {WARMUP_PROBES} warm-up probes"):
            for probe in warmup:
                await _post_probe(port, ingest_token, campaign, probe)
                await asyncio.sleep(WARMUP_S / WARMUP_PROBES)
            await _shown_everywhere(screens, compact(WARMUP_PROBES, LANG), SETTLE_TIMEOUT_S, subscribers)
        interval = params.seconds / params.probes
        label = (
            f"{params.probes} probes over {params.seconds:g}s on {params.screens} screens"
            f" ({params.rendered} rendered, {count} subscribers)"
        )
        with step(label) as notes:
            before, started, browser_before = meter.sample(), time.perf_counter(), _browser_cpu(server_pid)
            begin = time.perf_counter()
            trace_s = min(TRACE_S, params.seconds / 2)
            tracing = asyncio.create_task(
                _trace(browser, workdir / "trace.json", (params.seconds - trace_s) / 2, trace_s)
            )
            for index, probe in enumerate(probes):
                due = begin + (index + rng.uniform(-JITTER, JITTER) + 0.5) * interval
                if (delay := due - time.perf_counter()) > 0:
                    await asyncio.sleep(delay)
                await _post_probe(port, ingest_token, campaign, probe)
                if (index + 1) % max(1, params.probes // 10) == 0:
                    print(f"  probe {index + 1}/{params.probes}", file=sys.stderr, flush=True)
            await _shown_everywhere(screens, compact(probes[-1].count, LANG), SETTLE_TIMEOUT_S, subscribers)
            traced = await tracing
            after, elapsed, browser_after = meter.sample(), time.perf_counter() - started, _browser_cpu(server_pid)
            notes.append("every screen shows the last probe, every subscriber received it")
        load_end = time.time()
    finally:
        if tracing is not None and not tracing.done():
            tracing.cancel()
        stop.set()
        sent = (await asyncio.gather(load, return_exceptions=True))[0] if load is not None else None
        background.close()
    if isinstance(sent, BaseException):
        raise sent
    wall_pages_after = await _wall_pages(port)
    for screen in screens:
        screen.skews_ms.append(await _page_skew_ms(screen.page))
        await _collect(screen)
    cores = before.cores_until(after, elapsed)
    cores["browser"] = round((browser_after - browser_before) / elapsed, 2)
    cores["other"] = round(max(cores["other"] - cores["browser"], 0.0), 2)
    stats = {
        "offered_rate": params.rate,
        "accepted": sent.accepted if sent else 0,
        "posts": sent.posts if sent else 0,
        "rate": round(sent.rate, 1) if sent else 0.0,
        "post_p50_ms": percentile_ms(sent.latencies_s, 50) if sent else None,
        "post_p99_ms": percentile_ms(sent.latencies_s, 99) if sent else None,
    }
    version = browser.version
    for screen in screens:
        await screen.context.close()
    return Run(
        screens, subscribers, probes, wall_pages, wall_pages_after, load_start, load_end, stats, cores, version, traced
    )


def _browser_cpu(server_pid: int) -> float:
    """CPU seconds of this process's other children: Chromium's processes and Playwright's driver."""
    return harness.descendants_cpu_seconds(os.getpid(), frozenset({server_pid}))


def _long_tasks(tasks: list[list[float]], start: float, end: float) -> tuple[list[float], list[float]]:
    """Durations (ms) of the long tasks that started while the load ran, and of those before (the page's load)."""
    during = [duration for at, duration in tasks if start * 1000 <= at <= end * 1000]
    before = [duration for at, duration in tasks if at < start * 1000]
    return during, before


def _report(params: Parameters, run: Run, machine: dict[str, Any]) -> dict[str, Any]:
    texts = expected_texts(WARMUP_PROBES + params.probes)
    dom: list[float] = []
    frame: list[float] = []
    per_screen = []
    during_all: list[float] = []
    at_load_all: list[float] = []
    missed = 0
    unexpected: list[str] = []
    for screen in run.screens:
        samples = match(screen.changes, run.probes, texts)
        during, at_load = _long_tasks(screen.long_tasks, run.load_start, run.load_end)
        dom += samples.dom_s
        frame += samples.frame_s
        during_all += during
        at_load_all += at_load
        missed += samples.missed
        unexpected += samples.unexpected
        per_screen.append(
            {
                "screen": screen.number,
                "samples": len(samples.dom_s),
                "missed": samples.missed,
                "latency_p50_ms": percentile_ms(samples.dom_s, 50),
                "latency_p95_ms": percentile_ms(samples.dom_s, 95),
                "latency_max_ms": percentile_ms(samples.dom_s, 100),
                "long_tasks": len(during),
                "long_tasks_over_200ms": sum(d > LONG_TASK_LIMIT_MS for d in during),
                "long_task_max_ms": round(max(during), 1) if during else None,
                "clock_skew_ms": [[round(skew, 2), round(bound, 2)] for skew, bound in screen.skews_ms],
                "at_end": screen.at_end,
                "reloads_while_opening": screen.reloads_while_opening,
            }
        )
    received: list[float] = []
    per_subscriber = []
    subscriber_missed = 0
    for subscriber in run.subscribers:
        samples = match(subscriber.changes, run.probes, texts)
        received += samples.dom_s
        subscriber_missed += samples.missed
        unexpected += samples.unexpected
        per_subscriber.append(
            {
                "screen": subscriber.number,
                "samples": len(samples.dom_s),
                "missed": samples.missed,
                "latency_p50_ms": percentile_ms(samples.dom_s, 50),
                "latency_p95_ms": percentile_ms(samples.dom_s, 95),
                "latency_max_ms": percentile_ms(samples.dom_s, 100),
                "frames": subscriber.frames,
                "bytes": subscriber.bytes,
                "heartbeat_acks": subscriber.heartbeat_acks,
                "closed": subscriber.closed,
            }
        )
    p95 = percentile_ms(dom, 95)
    subscriber_p95 = percentile_ms(received, 95)
    over = sum(d > LONG_TASK_LIMIT_MS for d in during_all)
    rate = run.background["rate"]
    complete = missed == 0 and subscriber_missed == 0 and not unexpected
    return {
        "screens": len(run.screens) + len(run.subscribers),
        "rendered_screens": len(run.screens),
        "subscriber_screens": len(run.subscribers),
        "screen_latency_p50_ms": percentile_ms(dom, 50),
        "screen_latency_p95_ms": p95,
        "screen_latency_p99_ms": percentile_ms(dom, 99),
        "screen_latency_max_ms": percentile_ms(dom, 100),
        "frame_latency_p50_ms": percentile_ms(frame, 50),
        "frame_latency_p95_ms": percentile_ms(frame, 95),
        "samples": len(dom),
        "missed_samples": missed,
        "unexpected_texts": unexpected[:20],
        "subscriber_latency_p50_ms": percentile_ms(received, 50),
        "subscriber_latency_p95_ms": subscriber_p95,
        "subscriber_latency_p99_ms": percentile_ms(received, 99),
        "subscriber_latency_max_ms": percentile_ms(received, 100),
        "subscriber_samples": len(received),
        "subscriber_missed_samples": subscriber_missed,
        "subscriber_frames": sum(s.frames for s in run.subscribers),
        "subscriber_bytes": sum(s.bytes for s in run.subscribers),
        "server_wall_pages": run.wall_pages,
        "server_wall_pages_after": run.wall_pages_after,
        "probes": len(run.probes),
        "probe_post_p50_ms": percentile_ms([p.answered - p.sent for p in run.probes], 50),
        "events_per_s": rate,
        "offered_events_per_s": params.rate,
        "background_events": run.background["accepted"],
        "background_post_p50_ms": run.background["post_p50_ms"],
        "background_post_p99_ms": run.background["post_p99_ms"],
        "long_tasks_over_200ms": over,
        "long_tasks_over_50ms": len(during_all),
        "long_task_max_ms": round(max(during_all), 1) if during_all else None,
        "long_tasks_at_page_load_over_200ms": sum(d > LONG_TASK_LIMIT_MS for d in at_load_all),
        "long_task_max_at_page_load_ms": round(max(at_load_all), 1) if at_load_all else None,
        "traced_long_tasks": run.traced,
        "alerts_shown_at_end": max((s.at_end["alerts"] for s in run.screens), default=0),
        "emergency_banner_screens": sum(s.at_end["banner"] for s in run.screens),
        "reloads_while_opening": sum(s.reloads_while_opening for s in run.screens),
        "stale_screens_at_end": sum(s.at_end["stale"] for s in run.screens),
        "clock_skew_ms_max": round(max(abs(skew) for screen in run.screens for skew, _ in screen.skews_ms), 2),
        "clock_check_bound_ms_max": round(max(bound for screen in run.screens for _, bound in screen.skews_ms), 2),
        "per_screen": per_screen,
        "per_subscriber": per_subscriber,
        "cpu_cores": run.cores,
        "browser": {
            "executable": str(CHROMIUM),
            "version": run.browser_version,
            "contexts": len(run.screens),
            "viewport": VIEWPORT,
            "lang": LANG,
            "watched": VALUE_SELECTOR,
        },
        "targets": {
            "screens": TARGET_SCREENS,
            "events_per_s": TARGET_RATE,
            "p95_max_ms": TARGET_P95_MS,
            "long_task_max_ms": LONG_TASK_LIMIT_MS,
            "min_probes": TARGET_MIN_PROBES,
            "at_target_load": len(run.screens) + len(run.subscribers) >= TARGET_SCREENS
            and params.rate >= TARGET_RATE
            and rate >= RATE_TOLERANCE * params.rate
            and len(run.probes) >= TARGET_MIN_PROBES,
            "p95_met": complete
            and p95 is not None
            and p95 <= TARGET_P95_MS
            and (not run.subscribers or (subscriber_p95 is not None and subscriber_p95 <= TARGET_P95_MS)),
            "long_tasks_met": over == 0,
        },
        "machine": machine,
        "code": harness.code_version(),
        "parameters": {
            "screens": params.screens,
            "rendered": params.rendered,
            "rate": params.rate,
            "probes": params.probes,
            "seconds": params.seconds,
            "warmup_s": WARMUP_S,
            "warmup_probes": WARMUP_PROBES,
            "background_type_weights": BACKGROUND_WEIGHTS,
            "rules_dir": RULES_DIR.name,
        },
    }


def _table(report: dict[str, Any]) -> str:
    m, t, cores = report["machine"], report["targets"], report["cpu_cores"]
    verdict = "met" if t["p95_met"] else "MISSED"
    load_verdict = "" if t["at_target_load"] else " (not the target load: the figure does not judge the target)"
    lines = [
        f"Promo War-Room wall benchmark: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB,"
        f" Python {m['python']}, Chromium {report['browser']['version']}",
        "",
        f"{report['screens']} screens ({report['rendered_screens']} rendered in Chromium, "
        f"{report['subscriber_screens']} protocol-level subscribers; the server counted "
        f"{report['server_wall_pages']} wall pages), "
        f"{report['events_per_s']:,.0f} background events/s accepted of {report['offered_events_per_s']:,.0f}, "
        f"{report['probes']} probes{load_verdict}",
        f"event POST -> value changed on a screen ({report['samples']} samples, {report['missed_samples']} missed): "
        f"p50 {report['screen_latency_p50_ms']} ms, p95 {report['screen_latency_p95_ms']} ms, "
        f"p99 {report['screen_latency_p99_ms']} ms, max {report['screen_latency_max_ms']} ms "
        f"(target p95 <= {t['p95_max_ms']:g} ms: {verdict})",
        f"  event POST -> the frame carrying it received by a subscriber ({report['subscriber_samples']} samples, "
        f"{report['subscriber_missed_samples']} missed): p50 {report['subscriber_latency_p50_ms']} ms, "
        f"p95 {report['subscriber_latency_p95_ms']} ms, max {report['subscriber_latency_max_ms']} ms",
        f"  to the animation frame that paints it: p50 {report['frame_latency_p50_ms']} ms, "
        f"p95 {report['frame_latency_p95_ms']} ms; clocks differ by at most "
        f"{report['clock_skew_ms_max']} ms (read within ±{report['clock_check_bound_ms_max']} ms)",
        f"long tasks under load: {report['long_tasks_over_50ms']} over 50 ms, {report['long_tasks_over_200ms']} over "
        f"200 ms, longest {report['long_task_max_ms']} ms (target none over 200 ms: "
        f"{'met' if t['long_tasks_met'] else 'MISSED'}); while pages loaded: "
        f"{report['long_tasks_at_page_load_over_200ms']} over 200 ms, "
        f"longest {report['long_task_max_at_page_load_ms']} ms",
        f"traced {report['traced_long_tasks']['window_s']:g}s of every page's main thread: "
        f"{report['traced_long_tasks']['over_200ms_wall']} tasks over 200 ms on the clock, "
        f"{report['traced_long_tasks']['over_200ms_cpu']} over 200 ms of CPU (longest "
        f"{report['traced_long_tasks']['max_wall_ms']} ms on the clock, {report['traced_long_tasks']['max_cpu_ms']} "
        "ms of CPU)",
        "cores: " + ", ".join(f"{k} {v:.2f}" for k, v in cores.items()),
        "",
        "screen  samples  p50 ms  p95 ms  max ms  long>200ms  longest ms",
        *(
            f"{s['screen']:>6}  {s['samples']:>7}  {s['latency_p50_ms']!s:>6}  {s['latency_p95_ms']!s:>6}  "
            f"{s['latency_max_ms']!s:>6}  {s['long_tasks_over_200ms']:>10}  {s['long_task_max_ms']!s:>10}"
            for s in report["per_screen"]
        ),
    ]
    return "\n".join(lines)


def run(params: Parameters) -> dict[str, Any]:
    if not CHROMIUM.exists():
        raise BenchError(f"no Chromium at {CHROMIUM} (make browser installs it)")
    return harness.on_fresh_database(functools.partial(_measure, params))


def main(args: argparse.Namespace) -> None:
    """Entry point of ``warroom bench wall``."""
    harness.report(args, lambda: run(Parameters.from_args(args)), _table)
