"""``warroom bench metrics``: how fresh the live snapshot is under load, and what bounds the engine's memory.

Two parts, from one run:

1. freshness: a throw-away embedded PostgreSQL in a temporary directory, the
   demo campaign saved in it, and the real server (``warroom serve``, its own
   process, rate limit off, the default rule pack loaded as a checkout runs
   it). A screen subscribes to ``/v1/campaigns/<id>/live``; one paced sender
   posts visits, product views, carts and paid orders of the demo catalog
   every 20 ms at ``--rate`` events/s. For every POST the latency runs from
   its 202 to the arrival of the first pushed snapshot whose ``events`` count
   covers every event accepted up to that POST (one sequential sender makes
   that cumulative count well defined);
2. memory bound: in this process, the pure engine with the demo campaign fed
   ``--memory-events`` synthetic events over two hours of event time (50 SKUs
   x 5 channels, a new visitor and order id every event, so distinct counters
   switch to HyperLogLog), with this process's RSS every 10%.

Progress goes to stderr; stdout gets a table or, with ``--json``, one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import random
import subprocess
import sys
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import msgspec
from websockets.asyncio.client import ClientConnection, connect

from app.access import keys
from app.campaigns import model as campaigns
from app.campaigns import store
from app.campaigns.model import Campaign
from app.metrics.engine import Engine
from app.metrics.measures import Event
from app.metrics.series import ITEM_SECONDS_KEPT, SECONDS_KEPT
from bench import harness, loadclient
from bench.harness import EVENTS_PATH, POSTGRES_SETTINGS, SERVER_ENV, BenchError, CpuMeter

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN_FILE = ROOT / "campaigns" / "double11-demo.yaml"
RULES_DIR = ROOT / "rules"
"""The default rule pack; the server evaluates it after every metrics update, as a checkout's ``warroom serve`` does."""
CHANNELS = ("tmall", "jd", "douyin", "app", "wechat")
TYPE_WEIGHTS: dict[str, int] = {"visit": 30, "product_view": 40, "add_to_cart": 18, "order_paid": 12}
QUANTITY_TYPES = frozenset({"add_to_cart", "order_paid"})
MAX_QUANTITY = 3
VISITORS = 2_000_000
"""Visitors of the HTTP load are drawn from this many ids (the memory part uses a new id every event)."""
SEED = 20261111

TICK_S = 0.02
MAX_BATCH_EVENTS = 10_000
"""A sender that fell behind its schedule catches up in POSTs of at most this many events (the server's default
limit)."""
WARMUP_S = 2.0
"""Unmeasured load first, so the engine has met every SKU and channel before latencies count."""
DRAIN_TIMEOUT_S = 10.0
DRAIN_POLL_S = 0.01
WEBSOCKET_MAX_BYTES = 16 * 1024 * 1024
ACCEPTED = 202

TARGET_RATE = 5_000.0
MAX_SECONDS = 600.0
MAX_RATE = 100_000.0
MAX_MEMORY_EVENTS = 50_000_000
TARGET_SNAPSHOT_P99_MS = 1_000.0
RATE_TOLERANCE = 0.99

MEMORY_SPAN_S = 7_200.0
MEMORY_REPORTS = 10
MEMORY_CHUNK = 10_000
CHECKPOINT_COMPRESSION = 1
"""zlib level of the server's checkpoints (app/metrics/live.py), so the compressed size is what it stores."""
MIB = 1024 * 1024

T = TypeVar("T")


@dataclass(frozen=True)
class Parameters:
    """The ``bench metrics`` options, checked against bounds that keep every part finite."""

    seconds: float
    rate: float
    memory_events: int

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Parameters:
        check_load_options(args)
        harness.check_option("memory-events", args.memory_events, MEMORY_REPORTS, MAX_MEMORY_EVENTS)
        return cls(args.seconds, args.rate, args.memory_events)


def check_load_options(args: argparse.Namespace) -> None:
    """``--seconds`` and ``--rate`` of a benchmark that posts a measured load (``metrics``, ``alerts``): a
    BenchError naming the option when one is out of bounds."""
    harness.check_option("seconds", args.seconds, 0, MAX_SECONDS, low_exclusive=True)
    harness.check_option("rate", args.rate, 0, MAX_RATE, low_exclusive=True)


# ---- shared with ``bench alerts``: server, load, measurements ---------------------------------------


def percentile_ms(values_s: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, nearest rank) of durations in seconds, in milliseconds, rounded."""
    if not values_s:
        return None
    ordered = sorted(values_s)
    return round(ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1] * 1000, 2)


def median(values: list[float]) -> float | None:
    """The middle value (the mean of the two middle ones for an even count); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def rss_mb(pid: int) -> tuple[float, float]:
    """Resident and peak resident memory (VmRSS, VmHWM) of a process, in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return tuple(round(int(fields[name].split()[0]) / 1024, 1) for name in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


def demo_campaign() -> Campaign:
    """The demo campaign with its night on now (its burst began a minute ago): the benchmarks post live events,
    and only a night that is on is judged by the rules."""
    return campaigns.load_file(CAMPAIGN_FILE).moved(datetime.fromtimestamp(time.time() - 60, UTC))


class DemoEvents:
    """Shopping events of the demo campaign with unique ids, encoded per batch (msgspec keeps that cheap)."""

    def __init__(
        self, campaign: Campaign, prefix: str, seed: int = SEED, weights: dict[str, int] = TYPE_WEIGHTS
    ) -> None:
        """Events of the ``weights`` mix (a subset of ``TYPE_WEIGHTS``' types), drawn reproducibly from ``seed``."""
        self._campaign = campaign.id
        self._skus = [(s.sku, float(s.price or 0)) for s in campaign.skus]
        self._prefix = prefix
        self._rng = random.Random(seed)
        self._types = list(weights)
        self._cumulative = list(itertools.accumulate(weights.values()))
        self._next = 0

    def _id(self) -> str:
        self._next += 1
        return f"{self._prefix}-{self._next}"

    def batch(self, count: int) -> bytes:
        """``{"events": [...]}`` of ``count`` new events that occurred now."""
        rng = self._rng
        occurred_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        events = []
        for event_type in rng.choices(self._types, cum_weights=self._cumulative, k=count):
            event: dict[str, Any] = {
                "event_id": self._id(),
                "type": event_type,
                "occurred_at": occurred_at,
                "campaign": self._campaign,
                "channel": rng.choice(CHANNELS),
                "user_id": f"u-{rng.randrange(VISITORS)}",
            }
            if event_type != "visit":
                sku, price = rng.choice(self._skus)
                event["sku"] = sku
                if event_type in QUANTITY_TYPES:
                    event["quantity"] = quantity = rng.randint(1, MAX_QUANTITY)
                    if event_type == "order_paid":
                        event["order_id"] = f"{self._prefix}-order-{self._next}"
                        event["amount"] = round(price * quantity, 2)
            events.append(event)
        return msgspec.json.encode({"events": events})

    def stock_levels(self, skus: list[str], quantity: int, warehouse: str) -> bytes:
        """``{"events": [...]}`` of one ``stock_level`` event (a warehouse count, taken now) per SKU."""
        occurred_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        events = [
            {
                "event_id": self._id(),
                "type": "stock_level",
                "occurred_at": occurred_at,
                "campaign": self._campaign,
                "sku": sku,
                "warehouse": warehouse,
                "quantity": quantity,
            }
            for sku in skus
        ]
        return msgspec.json.encode({"events": events})


class _Accepted(msgspec.Struct):
    accepted: int


async def post_events(connection: loadclient.Connection, token: str, body: bytes) -> int:
    """POST a body to the ingest API; the number of accepted events (BenchError unless 202)."""
    status, answer = await connection.exchange(loadclient.post_request(EVENTS_PATH, token, body))
    if status != ACCEPTED:
        raise BenchError(f"POST {EVENTS_PATH} answered {status}: {answer[:300]!r}")
    return msgspec.json.decode(answer, type=_Accepted).accepted


async def get_json(connection: loadclient.Connection, path: str, kind: type[Any]) -> Any:
    """GET ``path`` (a screen key goes in ``?token=``) and decode the 200 answer as ``kind``."""
    status, answer = await connection.exchange(loadclient.get_request(path))
    if status != 200:
        raise BenchError(f"GET {path.split('?', 1)[0]} answered {status}: {answer[:300]!r}")
    return msgspec.json.decode(answer, type=kind)


@dataclass
class SendStats:
    """What one paced sender did; latencies are POST round trips in seconds."""

    posts: int = 0
    accepted: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.accepted / self.elapsed_s if self.elapsed_s else 0.0


AcceptListener = Callable[[int, float, float], None]
"""Called after each 202 with (events accepted, perf_counter time, wall-clock time)."""


async def paced_send(
    connection: loadclient.Connection,
    token: str,
    source: DemoEvents,
    rate: float,
    seconds: float,
    on_accept: AcceptListener | None = None,
    stop: asyncio.Event | None = None,
) -> SendStats:
    """Every ``TICK_S``, POST the events due by then at ``rate``/s, one request at a time, for ``seconds`` or until
    ``stop``.

    A slow answer delays the next tick; the sender then posts everything that
    became due meanwhile, so the offered rate holds as long as the server keeps up.
    It stops at the deadline: what a slow server did not take is not sent late.
    """
    stats = SendStats()
    total = round(rate * seconds)
    sent = 0
    start = time.perf_counter()
    deadline = start + seconds
    for tick in range(1, math.ceil(seconds / TICK_S) + 1):
        delay = start + tick * TICK_S - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.perf_counter()
        if now > deadline + TICK_S or (stop is not None and stop.is_set()):
            break
        due = min(total, round(rate * (min(now, deadline) - start))) - sent
        if due <= 0:
            continue
        count = min(due, MAX_BATCH_EVENTS)
        sent += count
        body = source.batch(count)
        posted = time.perf_counter()
        try:
            accepted = await post_events(connection, token, body)
        except loadclient.ANSWER_FAILURES as exc:
            raise BenchError(f"the ingest connection failed: {exc!r}") from None
        answered = time.perf_counter()
        stats.posts += 1
        stats.accepted += accepted
        stats.latencies_s.append(answered - posted)
        if on_accept is not None:
            on_accept(accepted, answered, time.time())
    stats.elapsed_s = time.perf_counter() - start
    return stats


@dataclass(frozen=True)
class Server:
    """The running server as the benchmarks reach it: its port, and its pid for CPU and RSS."""

    port: int
    pid: int


def _start_server(dsn: str, port: int, workdir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``warroom serve`` as a child process in ``workdir`` (no campaign files there), output in
    ``workdir/server.log``."""
    with open(workdir / "server.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", loadclient.HOST, "--port", str(port)],
            env={**os.environ, "DATABASE_URL": dsn, **SERVER_ENV, **env},
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@asynccontextmanager
async def serving(dsn: str, workdir: Path, env: dict[str, str]) -> AsyncIterator[Server]:
    """The real server on a free port for the block; SIGTERM (graceful) afterwards."""
    port = harness.free_port()
    process = _start_server(dsn, port, workdir, env)
    try:
        with harness.step(f"starting the server on {loadclient.HOST}:{port}"):
            await harness.wait_ready(process, port, workdir)
        yield Server(port, process.pid)
    finally:
        with harness.step("stopping the server (SIGTERM)"):
            harness.stop_server(process)


async def prepare(dsn: str, campaign: Campaign) -> tuple[dict[str, Any], str, str]:
    """Machine description, the campaign saved, and fresh ingest and screen keys."""
    conn = await asyncpg.connect(dsn)
    try:
        version = await conn.fetchval("SHOW server_version")
        settings = {name: await conn.fetchval(f"SELECT current_setting('{name}')") for name in POSTGRES_SETTINGS}
        await store.save(conn, campaign)
        _, ingest = await keys.create(conn, "bench-ingest", "ingest")
        _, screen = await keys.create(conn, "bench-screen", "screen")
    finally:
        await conn.close()
    return harness.machine(version, settings), ingest, screen


# ---- part 1: snapshot freshness ---------------------------------------------------------------------


class _SnapshotHead(msgspec.Struct):
    """The part of a pushed snapshot this benchmark reads."""

    events: int
    as_of: datetime


@dataclass
class Freshness:
    """Matches POSTs (cumulative accepted count) with the first snapshot that covers them."""

    measuring: bool = False
    accepted: int = 0
    covered: int = 0
    pending: deque[tuple[int, float, float, bool]] = field(default_factory=deque)
    """(cumulative accepted, perf time of the 202, wall time of the 202, measured) of POSTs not yet covered."""
    latencies_s: list[float] = field(default_factory=list)
    until_built_s: list[float] = field(default_factory=list)
    """Per sample: from the 202 to the moment the server built the covering snapshot (its ``as_of``)."""
    snapshots: int = 0
    snapshot_bytes: int = 0
    ahead: int = 0
    """Samples whose covering snapshot arrived before their 202 did (counted as 0 ms)."""

    def on_accept(self, count: int, at: float, wall: float) -> None:
        self.accepted += count
        if self.accepted <= self.covered:
            if self.measuring:
                self.latencies_s.append(0.0)
                self.ahead += 1
            return
        self.pending.append((self.accepted, at, wall, self.measuring))

    def on_snapshot(self, message: str | bytes, at: float) -> None:
        head = msgspec.json.decode(message, type=_SnapshotHead)
        self.snapshots += 1
        self.snapshot_bytes = len(message)
        self.covered = max(self.covered, head.events)
        built = head.as_of.timestamp()
        while self.pending and self.pending[0][0] <= head.events:
            _, accepted_at, accepted_wall, measured = self.pending.popleft()
            if measured:
                self.latencies_s.append(at - accepted_at)
                self.until_built_s.append(built - accepted_wall)

    async def drained(self, timeout_s: float) -> bool:
        """Wait until every accepted event is covered by a snapshot; False if that took over ``timeout_s``."""
        for _ in range(math.ceil(timeout_s / DRAIN_POLL_S)):
            if not self.pending:
                return True
            await asyncio.sleep(DRAIN_POLL_S)
        return not self.pending


async def _watch(websocket: ClientConnection, freshness: Freshness) -> None:
    async for message in websocket:
        freshness.on_snapshot(message, time.perf_counter())


async def _freshness(params: Parameters, workdir: Path, dsn: str, postmaster: int) -> dict[str, Any]:
    campaign = demo_campaign()
    machine, ingest_token, screen_token = await prepare(dsn, campaign)
    meter = CpuMeter(postmaster)
    async with serving(dsn, workdir, {"WARROOM_RULES_DIR": str(RULES_DIR)}) as server:
        meter.server_pids = frozenset({server.pid})
        freshness = Freshness()
        url = f"ws://{loadclient.HOST}:{server.port}/v1/campaigns/{campaign.id}/live?token={screen_token}"
        source = DemoEvents(campaign, "fresh")
        connection = await loadclient.Connection.open(server.port)
        async with connect(url, max_size=WEBSOCKET_MAX_BYTES) as websocket:
            watcher = asyncio.create_task(_watch(websocket, freshness))
            try:
                with harness.step(f"warming up: {WARMUP_S:g}s of events at {params.rate:,.0f}/s"):
                    await paced_send(connection, ingest_token, source, params.rate, WARMUP_S, freshness.on_accept)
                freshness.measuring = True
                before = meter.sample()
                label = f"[1/2] freshness: {params.rate:,.0f} events/s for {params.seconds:g}s, one screen subscribed"
                with harness.step(label) as notes:
                    sent = await paced_send(
                        connection, ingest_token, source, params.rate, params.seconds, freshness.on_accept
                    )
                    after = meter.sample()
                    drained = await freshness.drained(DRAIN_TIMEOUT_S)
                    notes.append(
                        f"{sent.rate:,.0f} events/s, snapshot p99 {percentile_ms(freshness.latencies_s, 99)} ms"
                    )
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
                connection.close()
        server_rss, server_peak = rss_mb(server.pid)
    elapsed = max(sent.elapsed_s, 1e-9)
    return {
        "snapshot_latency_p50_ms": percentile_ms(freshness.latencies_s, 50),
        "snapshot_latency_p90_ms": percentile_ms(freshness.latencies_s, 90),
        "snapshot_latency_p99_ms": percentile_ms(freshness.latencies_s, 99),
        "snapshot_latency_max_ms": percentile_ms(freshness.latencies_s, 100),
        "samples": len(freshness.latencies_s),
        "samples_ahead_of_202": freshness.ahead,
        "uncovered_posts": len(freshness.pending),
        "drained": drained,
        "accepted_to_as_of_p50_ms": percentile_ms(freshness.until_built_s, 50),
        "accepted_to_as_of_p99_ms": percentile_ms(freshness.until_built_s, 99),
        "events_per_s": round(sent.rate, 1),
        "accepted_events": sent.accepted,
        "posts": sent.posts,
        "post_p50_ms": percentile_ms(sent.latencies_s, 50),
        "post_p99_ms": percentile_ms(sent.latencies_s, 99),
        "snapshots_received": freshness.snapshots,
        "snapshot_bytes": freshness.snapshot_bytes,
        "rss_mb": server_rss,
        "rss_peak_mb": server_peak,
        "cpu_cores": before.cores_until(after, elapsed),
        "machine": machine,
    }


# ---- part 2: memory bound ---------------------------------------------------------------------------


def _synthetic(
    first: int, count: int, campaign: Campaign, start: float, step_s: float, rng: random.Random
) -> Iterator[Event]:
    """Events ``first``..``first + count - 1`` of the memory run: new visitor and order ids every time."""
    skus = [(s.sku, Decimal(str(s.price or 0))) for s in campaign.skus]
    types = rng.choices(list(TYPE_WEIGHTS), cum_weights=list(itertools.accumulate(TYPE_WEIGHTS.values())), k=count)
    for number, event_type in enumerate(types, first):
        sku, price = rng.choice(skus)
        paid = event_type == "order_paid"
        quantity = rng.randint(1, MAX_QUANTITY) if event_type in QUANTITY_TYPES else None
        yield Event(
            seq=number + 1,
            type=event_type,
            occurred_at=start + number * step_s,
            campaign=campaign.id,
            channel=rng.choice(CHANNELS),
            user_id=f"u-{number}",
            anonymous_id=None,
            order_id=f"o-{number}" if paid else None,
            sku=sku if event_type != "visit" else None,
            quantity=quantity,
            amount=price * quantity if paid and quantity else None,
            warehouse=None,
            metric=None,
            value=None,
            labels=None,
        )


def _state_inventory(engine: Engine) -> dict[str, Any]:
    """What the engine holds: the things its memory is bounded by."""
    out: dict[str, Any] = {}
    for campaign_id, state in engine.states.items():
        counters = [*state.visitors.values(), *state.buyers.values()]
        out[campaign_id] = {
            "dimensions": len(state.dims),
            "minute_buckets": sum(len(s.minutes) for s in state.dims.values()),
            "second_buckets": sum(len(s.seconds) for s in state.dims.values()),
            "distinct_counters": len(counters),
            "distinct_counters_hll": sum(not c.exact for c in counters),
            "buyer_minutes": len(state.buyers_by_minute),
            "events": state.events,
        }
    return out


def _memory(events: int) -> dict[str, Any]:
    """Feed the pure engine ``events`` synthetic events; this process's RSS every 10%, the state size at the end."""
    campaign = demo_campaign()
    pid = os.getpid()
    baseline, _ = rss_mb(pid)
    engine = Engine([campaign])
    rng = random.Random(SEED)
    start = campaign.phases.burst.start.timestamp()
    step_s = MEMORY_SPAN_S / events
    by_events: list[list[float]] = [[0, rss_mb(pid)[0]]]
    applied = 0
    started = time.perf_counter()
    print(
        f"[2/2] memory: {events:,} events into the engine over {MEMORY_SPAN_S / 3600:g} h of event time",
        file=sys.stderr,
    )
    for report in range(1, MEMORY_REPORTS + 1):
        target = events * report // MEMORY_REPORTS
        while applied < target:
            count = min(MEMORY_CHUNK, target - applied)
            engine.apply(_synthetic(applied, count, campaign, start, step_s, rng))
            applied += count
        by_events.append([applied, rss_mb(pid)[0]])
        elapsed = time.perf_counter() - started
        print(
            f"  {applied:>12,} events  RSS {by_events[-1][1]:>8,.1f} MiB  {elapsed:6.0f}s", file=sys.stderr, flush=True
        )
    state = engine.dump()
    compressed = zlib.compress(state, CHECKPOINT_COMPRESSION)
    print(f"  state {len(state) / MIB:.1f} MiB pickled, {len(compressed) / MIB:.1f} MiB compressed", file=sys.stderr)
    final, peak = rss_mb(pid)
    return {
        "events": events,
        "memory_rss_mb_by_events": by_events,
        "rss_baseline_mb": baseline,
        "rss_final_mb": final,
        "rss_peak_mb": peak,
        "pickled_state_bytes": len(state),
        "pickled_state_mb": round(len(state) / MIB, 2),
        "checkpoint_bytes": len(compressed),
        "apply_events_per_s": round(events / elapsed),
        "event_time_span_s": MEMORY_SPAN_S,
        "seconds_kept": SECONDS_KEPT,
        "sku_seconds_kept": ITEM_SECONDS_KEPT,
        "state": _state_inventory(engine),
    }


# ---- report -----------------------------------------------------------------------------------------


def run(params: Parameters) -> dict[str, Any]:
    """Freshness against a fresh database and server, then the in-process memory part."""

    async def work(workdir: Path, dsn: str, postmaster: int) -> dict[str, Any]:
        return await _freshness(params, workdir, dsn, postmaster)

    fresh = harness.on_fresh_database(work)
    memory = _memory(params.memory_events)
    machine = fresh.pop("machine")
    p99 = fresh["snapshot_latency_p99_ms"]
    return {
        **fresh,
        "memory_rss_mb_by_events": memory["memory_rss_mb_by_events"],
        "pickled_state_bytes": memory["pickled_state_bytes"],
        "targets": {
            "snapshot_p99_max_ms": TARGET_SNAPSHOT_P99_MS,
            "rate_min": TARGET_RATE,
            "rate_met": params.rate >= TARGET_RATE and fresh["events_per_s"] >= RATE_TOLERANCE * params.rate,
            "snapshot_p99_met": p99 is not None and p99 < TARGET_SNAPSHOT_P99_MS and not fresh["uncovered_posts"],
        },
        "memory": memory,
        "machine": machine,
        "code": harness.code_version(),
        "parameters": {
            "seconds": params.seconds,
            "rate": params.rate,
            "memory_events": params.memory_events,
            "tick_s": TICK_S,
            "warmup_s": WARMUP_S,
            "type_weights": TYPE_WEIGHTS,
            "channels": len(CHANNELS),
            "rules_dir": str(RULES_DIR.relative_to(ROOT)),
        },
    }


def _table(report: dict[str, Any]) -> str:
    m, t, mem = report["machine"], report["targets"], report["memory"]
    verdict = "met" if t["snapshot_p99_met"] and t["rate_met"] else "MISSED"
    lines = [
        f"Promo War-Room metrics benchmark: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB,"
        f" Python {m['python']}",
        "",
        f"freshness at {report['events_per_s']:,.0f} events/s ({report['samples']} POSTs): snapshot p50 "
        f"{report['snapshot_latency_p50_ms']} ms, p99 {report['snapshot_latency_p99_ms']} ms, max "
        f"{report['snapshot_latency_max_ms']} ms (target p99 < {t['snapshot_p99_max_ms']:g} ms at "
        f"{t['rate_min']:,.0f}/s: {verdict})",
        f"server RSS {report['rss_mb']} MiB (peak {report['rss_peak_mb']} MiB); cores: "
        + ", ".join(f"{k} {v:.2f}" for k, v in report["cpu_cores"].items()),
        "",
        f"memory, {mem['events']:,} events over {mem['event_time_span_s'] / 3600:g} h of event time "
        f"(process RSS before the engine: {mem['rss_baseline_mb']} MiB):",
        *(f"  {events:>12,} events  {rss:>8,.1f} MiB" for events, rss in mem["memory_rss_mb_by_events"]),
        f"  state: {mem['pickled_state_mb']} MiB pickled, {mem['checkpoint_bytes'] / MIB:.1f} MiB as a checkpoint",
    ]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> None:
    """Entry point of ``warroom bench metrics``."""
    harness.report(args, lambda: run(Parameters.from_args(args)), _table)
