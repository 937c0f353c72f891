"""``warroom bench alerts``: from a stock event's 202 to a screen seeing the alert fire, under load, with many rules.

Against a throw-away embedded PostgreSQL and the real server (its own
process, rate limit off, the demo campaign saved), with a generated rules
directory: ``--rules`` static rules over the demo campaign's 50 SKUs and 5
channels (SKU stock rules, SKU and channel windowed thresholds and drops,
all quiet under this load) plus ``bench_stock_trigger``, a SKU stock threshold
this benchmark crosses. Every SKU starts with plenty of stock; four paced
senders post ``--rate`` background events/s between them. At random moments
another client posts a ``stock_level`` below the trigger's threshold for a SKU, and
a screen polls ``GET /v1/alerts`` every 20 ms: the latency runs from the 202
to the first answer that lists the alert firing, as a client sees it. Then
it posts a count that recovers the SKU and waits for the alert to resolve.
Trials start during ``--seconds`` and overlap; the load goes on until the
last one ended. Each SKU is used at most twice so no alert becomes flapping.
``GET /v1/rules`` is sampled for ``eval_ms`` (the last evaluation's duration).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import yaml

from alerts.evaluation.lifecycle import FLAP_TRANSITIONS
from bench import harness, loadclient
from bench.harness import CpuMeter
from bench.metrics import (
    CHANNELS,
    SEED,
    WARMUP_S,
    DemoEvents,
    SendStats,
    check_load_options,
    demo_campaign,
    get_json,
    median,
    paced_send,
    percentile_ms,
    post_events,
    prepare,
    rss_mb,
    serving,
)

TRIGGER_RULE = "bench_stock_trigger"
TRIGGER_THRESHOLD = 1_000
TRIGGER_LEVEL = 100
"""Posted to fire the trigger rule: below its threshold, above every other rule's."""
STOCK_LEVEL = 100_000
"""Every SKU's count at the start and after each trial: far from every threshold, the trigger's recovery included."""
WAREHOUSE = "wh-bench"
WINDOWS = ("30s", "1m", "5m", "10m")
SKU_METRICS = ("units_sold", "add_to_cart", "product_views", "gmv_paid")
CHANNEL_METRICS = ("visits", "orders_paid", "gmv_paid", "orders_created")
QUIET_ABOVE = 1e12
"""Windowed thresholds sit this high, so the rules are evaluated in full but never fire (the metrics are counts
and amounts: a ratio's threshold must leave it room to recover inside 0..1, or the rules refuse to load)."""
OVERSTOCK_ABOVE = 10_000_000
DROP_BELOW = -0.9
DROP_MIN_REFERENCE = 50.0

SENDERS = 4
"""Background load comes from this many clients, each posting its share of ``--rate`` every 20 ms."""
POLL_S = 0.02
EVAL_SAMPLE_S = 1.0
"""``GET /v1/rules`` answers with every rule's definition, so it is sampled sparingly."""
TRIAL_GAP_S = (0.3, 1.5)
"""A new trial starts after a random pause in this range (seconds), whether or not earlier ones finished."""
HOLD_S = (0.2, 1.0)
"""A fired alert is left firing for a random time in this range before the recovering count is posted."""
TRIAL_TIMEOUT_S = 30.0
"""A trial whose alert has not fired and resolved by then counts as missed."""
USES_PER_SKU = FLAP_TRANSITIONS // 2
"""Each trial fires and resolves an alert (2 transitions); one more would mark that SKU's alert flapping."""
MIN_SAMPLES = 20

TARGET_RATE = 5_000.0
TARGET_RULES = 500
MAX_RULES = 10_000
TARGET_ALERT_P99_MS = 2_000.0
RATE_TOLERANCE = 0.99


@dataclass(frozen=True)
class Parameters:
    """The ``bench alerts`` options, checked against bounds that keep every part finite."""

    seconds: float
    rate: float
    rules: int

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Parameters:
        check_load_options(args)
        harness.check_option("rules", args.rules, 1, MAX_RULES)
        return cls(args.seconds, args.rate, args.rules)


# ---- the rules directory ----------------------------------------------------------------------------


def _text(what: str) -> dict[str, str]:
    return {"en": what, "zh": what}


def _background_rule(number: int) -> dict[str, Any]:
    """Rule ``number`` of the quiet ones: cycles through four shapes, metrics and windows."""
    shape, variant = number % 4, number // 4
    window = WINDOWS[variant % len(WINDOWS)]
    rule: dict[str, Any] = {"name": f"bench_{number:05d}", "kind": "static", "for": "10s", "panel": "alerts"}
    if shape == 0:
        rule.update(
            metric="stock_on_hand",
            by="sku",
            panel="inventory",
            conditions={"warning": {"op": ">", "value": OVERSTOCK_ABOVE + number}},
        )
    elif shape == 3:
        rule.update(
            metric=CHANNEL_METRICS[variant % len(CHANNEL_METRICS)],
            by="channel",
            window=window,
            change={"vs": "previous", "over": "10m", "min_reference": DROP_MIN_REFERENCE},
            conditions={"warning": {"op": "<=", "value": DROP_BELOW}},
        )
    else:
        metrics, by = (SKU_METRICS, "sku") if shape == 1 else (CHANNEL_METRICS, "channel")
        rule.update(
            metric=metrics[variant % len(metrics)],
            by=by,
            window=window,
            conditions={"warning": {"op": ">", "value": QUIET_ABOVE + number}},
        )
    rule.update(summary=_text(f"{rule['metric']} {{value}} (threshold {{threshold}})"), runbook=_text("bench rule"))
    return rule


def write_rules(directory: Path, count: int) -> Path:
    """``count`` rules in ``directory/bench.yaml``: the trigger first, then ``count - 1`` quiet ones."""
    trigger = {
        "name": TRIGGER_RULE,
        "kind": "static",
        "metric": "stock_on_hand",
        "by": "sku",
        "panel": "inventory",
        "summary": _text("{sku}: {value} units on hand (threshold {threshold})"),
        "runbook": _text("bench trigger"),
        "conditions": {"emergency": {"op": "<", "value": TRIGGER_THRESHOLD}},
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "bench.yaml"
    rules = [trigger, *(_background_rule(n) for n in range(1, count))]
    path.write_text(yaml.safe_dump({"rules": rules}, sort_keys=False))
    return path


# ---- trials -----------------------------------------------------------------------------------------


class _FiringAlert(msgspec.Struct):
    labels: dict[str, str]
    rule: str
    fired_at: float | None = None


class _RuleStatus(msgspec.Struct):
    series_evaluated: int


class _Rules(msgspec.Struct):
    rules: list[_RuleStatus]
    eval_ms: float


@dataclass(eq=False)
class Trial:
    """One SKU taken below the trigger's threshold and back; times are perf_counter unless named wall."""

    sku: str
    triggered: float = 0.0
    triggered_wall: float = 0.0
    fired_seen: float | None = None
    fired_at_wall: float | None = None
    """The server's ``fired_at``: when the evaluation that fired it started."""
    recovered: float = 0.0
    resolved_seen: float | None = None
    fired: asyncio.Event = field(default_factory=asyncio.Event)
    resolved: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Observer:
    """What the screen's polling saw: fired and resolved trials, and rules' evaluation times."""

    waiting_fire: dict[str, Trial] = field(default_factory=dict)
    waiting_resolve: dict[str, Trial] = field(default_factory=dict)
    other_firing: set[str] = field(default_factory=set)
    polls: int = 0
    eval_ms: list[float] = field(default_factory=list)
    series_per_evaluation: int = 0

    def seen(self, alerts: list[_FiringAlert], at: float) -> None:
        firing: dict[str, _FiringAlert] = {}
        for alert in alerts:
            if alert.rule == TRIGGER_RULE:
                firing[alert.labels.get("sku", "")] = alert
            else:
                self.other_firing.add(alert.rule)
        for sku in [s for s in self.waiting_fire if s in firing]:
            trial = self.waiting_fire.pop(sku)
            trial.fired_seen, trial.fired_at_wall = at, firing[sku].fired_at
            trial.fired.set()
        for sku in [s for s in self.waiting_resolve if s not in firing]:
            trial = self.waiting_resolve.pop(sku)
            trial.resolved_seen = at
            trial.resolved.set()


async def _poll_alerts(port: int, token: str, observer: Observer, seconds: float) -> None:
    """The screen: every alert that is firing, every ``POLL_S``, for at most ``seconds``."""
    connection = await loadclient.Connection.open(port)
    path = f"/v1/alerts?token={token}"
    started = time.perf_counter()
    try:
        for tick in range(1, math.ceil(seconds / POLL_S) + 1):
            alerts = await get_json(connection, path, list[_FiringAlert])
            observer.polls += 1
            observer.seen(alerts, time.perf_counter())
            await asyncio.sleep(max(0.0, started + tick * POLL_S - time.perf_counter()))
    finally:
        connection.close()


async def _sample_rules(port: int, token: str, observer: Observer, seconds: float) -> None:
    """``eval_ms`` of the latest evaluation, every ``EVAL_SAMPLE_S``."""
    connection = await loadclient.Connection.open(port)
    try:
        for _ in range(math.ceil(seconds / EVAL_SAMPLE_S)):
            rules = await get_json(connection, f"/v1/rules?token={token}", _Rules)
            observer.eval_ms.append(rules.eval_ms)
            observer.series_per_evaluation = sum(r.series_evaluated for r in rules.rules)
            await asyncio.sleep(EVAL_SAMPLE_S)
    finally:
        connection.close()


@dataclass(frozen=True)
class Stocker:
    """The warehouse systems: each count is posted on a connection of its own, independently of the others."""

    port: int
    token: str
    source: DemoEvents

    async def count(self, skus: list[str], quantity: int) -> float:
        """Post the counts; the perf_counter time their 202 arrived."""
        connection = await loadclient.Connection.open(self.port)
        try:
            await post_events(connection, self.token, self.source.stock_levels(skus, quantity, WAREHOUSE))
            return time.perf_counter()
        finally:
            connection.close()


async def _trial(
    trial: Trial, stocker: Stocker, observer: Observer, rng: random.Random, free: deque[str] | None
) -> None:
    """Fire the trigger for one SKU, leave it firing a moment, recover it; once resolved, the SKU goes back to
    ``free``."""
    try:
        async with asyncio.timeout(TRIAL_TIMEOUT_S):
            trial.triggered = await stocker.count([trial.sku], TRIGGER_LEVEL)
            trial.triggered_wall = time.time() - (time.perf_counter() - trial.triggered)
            observer.waiting_fire[trial.sku] = trial
            await trial.fired.wait()
            await asyncio.sleep(rng.uniform(*HOLD_S))
            trial.recovered = await stocker.count([trial.sku], STOCK_LEVEL)
            observer.waiting_resolve[trial.sku] = trial
            await trial.resolved.wait()
    except TimeoutError:
        observer.waiting_fire.pop(trial.sku, None)
        observer.waiting_resolve.pop(trial.sku, None)
        return
    if free is not None:
        free.append(trial.sku)


async def _run_trials(skus: list[str], stocker: Stocker, observer: Observer, seconds: float) -> list[Trial]:
    """Start trials at random moments for ``seconds``, on SKUs not in a trial; wait for them all to end."""
    rng = random.Random(SEED)
    free = deque(rng.sample(skus, len(skus)))
    uses = dict.fromkeys(skus, 0)
    trials: list[Trial] = []
    tasks: list[asyncio.Task[None]] = []
    deadline = time.perf_counter() + seconds
    for _ in range(USES_PER_SKU * len(skus)):
        await asyncio.sleep(rng.uniform(*TRIAL_GAP_S))
        if time.perf_counter() >= deadline:
            break
        if not free:
            continue
        sku = free.popleft()
        uses[sku] += 1
        trial = Trial(sku)
        trials.append(trial)
        reuse = free if uses[sku] < USES_PER_SKU else None
        tasks.append(asyncio.create_task(_trial(trial, stocker, observer, rng, reuse)))
    await asyncio.gather(*tasks)
    return trials


# ---- the run ----------------------------------------------------------------------------------------


async def _measure(params: Parameters, workdir: Path, dsn: str, postmaster: int) -> dict[str, Any]:
    campaign = demo_campaign()
    skus = [s.sku for s in campaign.skus]
    machine, ingest_token, screen_token = await prepare(dsn, campaign)
    rules_dir = workdir / "rules"
    write_rules(rules_dir, params.rules)
    meter = CpuMeter(postmaster)
    async with serving(dsn, workdir, {"WARROOM_RULES_DIR": str(rules_dir)}) as server:
        meter.server_pids = frozenset({server.pid})
        port = server.port
        sources = [DemoEvents(campaign, f"alerts{n}", SEED + n) for n in range(SENDERS)]
        loaded = await _probe_rules(port, screen_token)
        background = [await loadclient.Connection.open(port) for _ in range(SENDERS)]
        stocker = Stocker(port, ingest_token, DemoEvents(campaign, "stock"))
        observer = Observer()
        try:
            with harness.step(f"counting {len(skus)} SKUs at {STOCK_LEVEL:,} units, then {WARMUP_S:g}s of load"):
                await stocker.count(skus, STOCK_LEVEL)
                await paced_send(background[0], ingest_token, sources[0], params.rate, WARMUP_S)
            load_s = params.seconds + TRIAL_GAP_S[1] + TRIAL_TIMEOUT_S
            trials_done = asyncio.Event()
            label = f"[1/1] {params.rate:,.0f} events/s for {params.seconds:g}s with {loaded} rules, stock trials"
            with harness.step(label) as notes:
                before, started = meter.sample(), time.perf_counter()
                poller = asyncio.create_task(_poll_alerts(port, screen_token, observer, load_s))
                sampler = asyncio.create_task(_sample_rules(port, screen_token, observer, load_s))
                try:
                    load = asyncio.gather(
                        *(
                            paced_send(
                                connection, ingest_token, source, params.rate / SENDERS, load_s, stop=trials_done
                            )
                            for connection, source in zip(background, sources, strict=False)
                        )
                    )
                    trials = await _run_trials(skus, stocker, observer, params.seconds)
                    trials_done.set()
                    sent = _combined(await load)
                finally:
                    poller.cancel()
                    sampler.cancel()
                    await asyncio.gather(poller, sampler, return_exceptions=True)
                after, elapsed = meter.sample(), time.perf_counter() - started
                fire = [t.fired_seen - t.triggered for t in trials if t.fired_seen is not None]
                notes.append(f"{sent.rate:,.0f} events/s, {len(fire)} alerts, p99 {percentile_ms(fire, 99)} ms")
            server_rss, server_peak = rss_mb(server.pid)
        finally:
            for connection in background:
                connection.close()
    return _report(
        params, sent, trials, observer, loaded, before.cores_until(after, elapsed), server_rss, server_peak, machine
    )


def _combined(senders: list[SendStats]) -> SendStats:
    """The background senders as one: their events over the longest of their run times."""
    return SendStats(
        posts=sum(s.posts for s in senders),
        accepted=sum(s.accepted for s in senders),
        elapsed_s=max(s.elapsed_s for s in senders),
        latencies_s=[latency for s in senders for latency in s.latencies_s],
    )


async def _probe_rules(port: int, token: str) -> int:
    """How many rules the server loaded (the generated file must load whole)."""
    connection = await loadclient.Connection.open(port)
    try:
        return len((await get_json(connection, f"/v1/rules?token={token}", _Rules)).rules)
    finally:
        connection.close()


def _report(
    params: Parameters,
    sent: SendStats,
    trials: list[Trial],
    observer: Observer,
    loaded: int,
    cores: dict[str, float],
    server_rss: float,
    server_peak: float,
    machine: dict[str, Any],
) -> dict[str, Any]:
    fired = [t for t in trials if t.fired_seen is not None]
    fire = [t.fired_seen - t.triggered for t in fired]  # type: ignore[operator]
    evaluation_started = [t.fired_at_wall - t.triggered_wall for t in fired if t.fired_at_wall is not None]
    resolve = [t.resolved_seen - t.recovered for t in fired if t.resolved_seen is not None]
    p99 = percentile_ms(fire, 99)
    eval_median = median(observer.eval_ms)
    return {
        "alert_latency_p50_ms": percentile_ms(fire, 50),
        "alert_latency_p90_ms": percentile_ms(fire, 90),
        "alert_latency_p99_ms": p99,
        "alert_latency_max_ms": percentile_ms(fire, 100),
        "samples": len(fire),
        "trials": len(trials),
        "missed": len(trials) - len(fired),
        "accepted_to_fired_at_p50_ms": percentile_ms(evaluation_started, 50),
        "accepted_to_fired_at_p99_ms": percentile_ms(evaluation_started, 99),
        "resolve_latency_p50_ms": percentile_ms(resolve, 50),
        "resolve_latency_p99_ms": percentile_ms(resolve, 99),
        "resolved": len(resolve),
        "events_per_s": round(sent.rate, 1),
        "accepted_events": sent.accepted,
        "post_p50_ms": percentile_ms(sent.latencies_s, 50),
        "post_p99_ms": percentile_ms(sent.latencies_s, 99),
        "rules": loaded,
        "series_per_evaluation": observer.series_per_evaluation,
        "eval_ms_per_tick": {
            "median": round(eval_median, 1) if eval_median is not None else None,
            "max": round(max(observer.eval_ms), 1) if observer.eval_ms else None,
            "samples": len(observer.eval_ms),
        },
        "other_rules_firing": sorted(observer.other_firing),
        "alert_polls": observer.polls,
        "rss_mb": server_rss,
        "rss_peak_mb": server_peak,
        "cpu_cores": cores,
        "targets": {
            "alert_p99_max_ms": TARGET_ALERT_P99_MS,
            "rate_min": TARGET_RATE,
            "rules_min": TARGET_RULES,
            "min_samples": MIN_SAMPLES,
            "rate_met": params.rate >= TARGET_RATE and sent.rate >= RATE_TOLERANCE * params.rate,
            "rules_met": loaded >= TARGET_RULES,
            "alert_p99_met": p99 is not None
            and p99 < TARGET_ALERT_P99_MS
            and len(fire) >= MIN_SAMPLES
            and len(fired) == len(trials),
        },
        "machine": machine,
        "code": harness.code_version(),
        "parameters": {
            "seconds": params.seconds,
            "rate": params.rate,
            "rules": params.rules,
            "skus": len(demo_campaign().skus),
            "channels": len(CHANNELS),
            "poll_s": POLL_S,
            "trial_gap_s": list(TRIAL_GAP_S),
            "hold_s": list(HOLD_S),
            "trigger": {
                "rule": TRIGGER_RULE,
                "threshold": TRIGGER_THRESHOLD,
                "level": TRIGGER_LEVEL,
                "recovery": STOCK_LEVEL,
            },
        },
    }


def _table(report: dict[str, Any]) -> str:
    m, t, e = report["machine"], report["targets"], report["eval_ms_per_tick"]
    met = t["alert_p99_met"] and t["rate_met"] and t["rules_met"]
    return "\n".join(
        [
            f"Promo War-Room alerts benchmark: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB,"
            f" Python {m['python']}",
            "",
            f"{report['rules']} rules ({report['series_per_evaluation']:,} series per evaluation) at "
            f"{report['events_per_s']:,.0f} events/s",
            f"stock event 202 -> alert seen firing ({report['samples']} of {report['trials']} trials): p50 "
            f"{report['alert_latency_p50_ms']} ms, p99 {report['alert_latency_p99_ms']} ms, max "
            f"{report['alert_latency_max_ms']} ms (target p99 < {t['alert_p99_max_ms']:g} ms at {t['rate_min']:,.0f}/s "
            f"with {t['rules_min']} rules: {'met' if met else 'MISSED'})",
            f"evaluation: median {e['median']} ms, max {e['max']} ms ({e['samples']} samples); "
            f"recovery seen: p50 {report['resolve_latency_p50_ms']} ms",
            f"server RSS {report['rss_mb']} MiB; cores: "
            + ", ".join(f"{k} {v:.2f}" for k, v in report["cpu_cores"].items()),
        ]
    )


def run(params: Parameters) -> dict[str, Any]:
    async def work(workdir: Path, dsn: str, postmaster: int) -> dict[str, Any]:
        return await _measure(params, workdir, dsn, postmaster)

    return harness.on_fresh_database(work)


def main(args: argparse.Namespace) -> None:
    """Entry point of ``warroom bench alerts``."""
    harness.report(args, lambda: run(Parameters.from_args(args)), _table)
