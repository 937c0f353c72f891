"""``warroom bench notify``: from an event's POST to the alert on a websocket and at a webhook receiver.

Against a throw-away embedded PostgreSQL and the real server (its own
process, the demo campaign saved), with one rule (a SKU's stock below
``TRIGGER_THRESHOLD`` is an emergency) and one contact point: Apprise's JSON
target pointing at a receiver in this process. The route uses the shipped
defaults (group wait 500 ms) with ``group_by: [...]``, so each alert is a new
group whose first message is what is timed. A websocket client follows
``/v1/alerts/stream``. Under ``--rate`` background events/s, each trial posts
a low stock count for an unused SKU and records when the ``firing``
transition reaches the websocket and when the message reaches the receiver;
then posts a recovering count and waits for the resolution.

Reported: from the alert's ``fired_at`` (the engine's decision) to the
websocket frame (``ws_latency_*``: the issue's "alert fired → websocket"),
and from the event's POST to the webhook receiver (``webhook_latency_*``: the
issue's end to end), plus the other two combinations.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import websockets
import yaml

from bench import harness, loadclient
from bench.harness import CpuMeter, step
from bench.metrics import (
    SEED,
    WARMUP_S,
    DemoEvents,
    demo_campaign,
    paced_send,
    percentile_ms,
    post_events,
    prepare,
    serving,
)

TRIGGER_RULE = "bench_notify_trigger"
TRIGGER_THRESHOLD = 1_000
TRIGGER_LEVEL = 10
STOCK_LEVEL = 100_000
WAREHOUSE = "wh-bench"
TRIAL_TIMEOUT_S = 20.0
PAUSE_S = 0.3
"""Between trials, so each alert is timed on its own."""
MAX_TRIALS = 50
"""One SKU per trial, never reused (the demo campaign has 50)."""
MAX_RATE = 50_000.0
TARGET_WS_P99_MS = 300.0
TARGET_WEBHOOK_P99_MS = 1_000.0


@dataclass(frozen=True)
class Parameters:
    trials: int
    rate: float

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Parameters:
        harness.check_option("trials", args.trials, 1, MAX_TRIALS)
        harness.check_option("rate", args.rate, 0, MAX_RATE)
        return cls(args.trials, args.rate)


@dataclass
class Trial:
    sku: str
    posted: float = 0.0
    """Wall time just before the low stock count was posted."""
    fired_at: float | None = None
    ws_seen: float | None = None
    webhook_seen: float | None = None
    resolved: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def check_done(self) -> None:
        if self.ws_seen is not None and self.webhook_seen is not None:
            self.done.set()


class Receiver:
    """A minimal HTTP server taking Apprise's JSON posts; it matches each to its trial by SKU."""

    def __init__(self, trials: dict[str, Trial]) -> None:
        self.trials = trials
        self.messages = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, loadclient.HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                body = await reader.readexactly(length)
                seen = time.time()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                self._record(json.loads(body), seen)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def _record(self, message: dict[str, Any], seen: float) -> None:
        self.messages += 1
        if message.get("type") == "success":
            return
        for sku, trial in self.trials.items():
            if f"{sku}:" in message.get("message", "") and trial.webhook_seen is None:
                trial.webhook_seen = seen
                trial.check_done()


async def _follow(url: str, trials: dict[str, Trial]) -> None:
    async with websockets.connect(url) as socket:
        async for raw in socket:
            seen = time.time()
            frame = json.loads(raw)
            trial = trials.get(frame.get("labels", {}).get("sku", "")) if frame.get("type") == "transition" else None
            if trial is None:
                continue
            if frame["kind"] == "firing" and trial.ws_seen is None:
                trial.ws_seen = seen
                trial.fired_at = datetime.fromisoformat(frame["fired_at"]).timestamp()
                trial.check_done()
            elif frame["kind"] == "resolved":
                trial.resolved.set()


def write_config(workdir: Path, receiver_port: int) -> dict[str, str]:
    rules = workdir / "rules"
    rules.mkdir()
    text = {"en": "{sku}: {value} left", "zh": "{sku}：剩余 {value}"}
    rule = {
        "name": TRIGGER_RULE,
        "kind": "static",
        "metric": "stock_on_hand",
        "by": "sku",
        "panel": "inventory",
        "summary": text,
        "runbook": {"en": "restock", "zh": "补货"},
        "conditions": {"emergency": {"op": "<", "value": TRIGGER_THRESHOLD}},
    }
    (rules / "bench.yaml").write_text(yaml.safe_dump({"rules": [rule]}, allow_unicode=True))
    notify = {
        "contact_points": {"bench-receiver": {"urls": [f"json://{loadclient.HOST}:{receiver_port}/hook"]}},
        "route": {"receiver": "bench-receiver", "group_by": ["..."]},
    }
    (workdir / "notify.yaml").write_text(yaml.safe_dump(notify))
    return {"WARROOM_RULES_DIR": str(rules), "WARROOM_NOTIFY_FILE": str(workdir / "notify.yaml")}


async def _trial(trial: Trial, port: int, token: str, source: DemoEvents) -> None:
    connection = await loadclient.Connection.open(port)
    try:
        async with asyncio.timeout(TRIAL_TIMEOUT_S):
            trial.posted = time.time()
            await post_events(connection, token, source.stock_levels([trial.sku], TRIGGER_LEVEL, WAREHOUSE))
            await trial.done.wait()
            await post_events(connection, token, source.stock_levels([trial.sku], STOCK_LEVEL, WAREHOUSE))
            await trial.resolved.wait()
    except TimeoutError:
        pass
    finally:
        connection.close()


async def _measure(params: Parameters, workdir: Path, dsn: str, postmaster: int) -> dict[str, Any]:
    campaign = demo_campaign()
    skus = [s.sku for s in campaign.skus][: params.trials]
    machine, ingest_token, screen_token = await prepare(dsn, campaign)
    trials = {sku: Trial(sku) for sku in skus}
    receiver = Receiver(trials)
    await receiver.start()
    meter = CpuMeter(postmaster)
    env = write_config(workdir, receiver.port)
    try:
        async with serving(dsn, workdir, env) as server:
            meter.server_pids = frozenset({server.pid})
            stock = DemoEvents(campaign, "stock")
            connection = await loadclient.Connection.open(server.port)
            await post_events(
                connection, ingest_token, stock.stock_levels([s.sku for s in campaign.skus], STOCK_LEVEL, WAREHOUSE)
            )
            connection.close()
            follower = asyncio.create_task(
                _follow(f"ws://{loadclient.HOST}:{server.port}/v1/alerts/stream?token={screen_token}", trials)
            )
            background = await loadclient.Connection.open(server.port)
            stop = asyncio.Event()
            load = (
                asyncio.create_task(
                    paced_send(
                        background, ingest_token, DemoEvents(campaign, "load", SEED), params.rate, 3600.0, stop=stop
                    )
                )
                if params.rate
                else None
            )
            try:
                with step(f"{WARMUP_S:g}s of background load at {params.rate:,.0f} events/s"):
                    await asyncio.sleep(WARMUP_S)
                with step(f"{params.trials} alerts, one at a time, under {params.rate:,.0f} events/s") as notes:
                    before, started = meter.sample(), time.perf_counter()
                    for number, trial in enumerate(trials.values(), start=1):
                        await _trial(trial, server.port, ingest_token, stock)
                        print(f"  trial {number}/{params.trials}: {trial.sku}", file=sys.stderr, flush=True)
                        await asyncio.sleep(PAUSE_S)
                    after, elapsed = meter.sample(), time.perf_counter() - started
                    complete = [t for t in trials.values() if t.ws_seen and t.webhook_seen]
                    notes.append(f"{len(complete)} of {params.trials} alerts seen on both")
            finally:
                stop.set()
                if load is not None:
                    await asyncio.gather(load, return_exceptions=True)
                background.close()
                follower.cancel()
                await asyncio.gather(follower, return_exceptions=True)
    finally:
        receiver.close()
    return _report(params, list(trials.values()), receiver.messages, before.cores_until(after, elapsed), machine)


def _report(
    params: Parameters, trials: list[Trial], messages: int, cores: dict[str, float], machine: dict[str, Any]
) -> dict[str, Any]:
    ws = [t.ws_seen - t.fired_at for t in trials if t.ws_seen and t.fired_at]
    post_ws = [t.ws_seen - t.posted for t in trials if t.ws_seen]
    hook = [t.webhook_seen - t.posted for t in trials if t.webhook_seen]
    fired_hook = [t.webhook_seen - t.fired_at for t in trials if t.webhook_seen and t.fired_at]
    ws_p99, hook_p99 = percentile_ms(ws, 99), percentile_ms(hook, 99)
    complete = len(ws) == len(hook) == len(trials)
    return {
        "ws_latency_p50_ms": percentile_ms(ws, 50),
        "ws_latency_p99_ms": ws_p99,
        "webhook_latency_p50_ms": percentile_ms(hook, 50),
        "webhook_latency_p99_ms": hook_p99,
        "post_to_ws_p50_ms": percentile_ms(post_ws, 50),
        "post_to_ws_p99_ms": percentile_ms(post_ws, 99),
        "fired_to_webhook_p50_ms": percentile_ms(fired_hook, 50),
        "fired_to_webhook_p99_ms": percentile_ms(fired_hook, 99),
        "trials": len(trials),
        "seen_on_websocket": len(ws),
        "seen_at_webhook": len(hook),
        "webhook_messages": messages,
        "background_events_per_s": params.rate,
        "cpu_cores": cores,
        "targets": {
            "ws_p99_max_ms": TARGET_WS_P99_MS,
            "webhook_p99_max_ms": TARGET_WEBHOOK_P99_MS,
            "ws_met": complete and ws_p99 is not None and ws_p99 <= TARGET_WS_P99_MS,
            "webhook_met": complete and hook_p99 is not None and hook_p99 <= TARGET_WEBHOOK_P99_MS,
        },
        "machine": machine,
        "code": harness.code_version(),
        "parameters": {
            "trials": params.trials,
            "rate": params.rate,
            "group_wait": "500ms (default)",
            "group_by": ["..."],
        },
    }


def _table(report: dict[str, Any]) -> str:
    m, t = report["machine"], report["targets"]
    return "\n".join(
        [
            f"Promo War-Room notify benchmark: {m['cpu_model']}, {m['cores']} cores, Python {m['python']}",
            "",
            f"{report['trials']} alerts under {report['background_events_per_s']:,.0f} background events/s "
            f"({report['seen_on_websocket']} seen on the websocket, {report['seen_at_webhook']} at the webhook)",
            f"alert fired -> websocket: p50 {report['ws_latency_p50_ms']} ms, p99 {report['ws_latency_p99_ms']} ms "
            f"(target <= {t['ws_p99_max_ms']:g} ms: {'met' if t['ws_met'] else 'MISSED'})",
            f"event POST -> webhook receiver: p50 {report['webhook_latency_p50_ms']} ms, p99 "
            f"{report['webhook_latency_p99_ms']} ms (target <= {t['webhook_p99_max_ms']:g} ms: "
            f"{'met' if t['webhook_met'] else 'MISSED'})",
            f"event POST -> websocket: p50 {report['post_to_ws_p50_ms']} ms, p99 {report['post_to_ws_p99_ms']} ms; "
            f"alert fired -> webhook: p50 {report['fired_to_webhook_p50_ms']} ms,"
            f" p99 {report['fired_to_webhook_p99_ms']} ms",
            "cores: " + ", ".join(f"{k} {v:.2f}" for k, v in report["cpu_cores"].items()),
        ]
    )


def run(params: Parameters) -> dict[str, Any]:
    return harness.on_fresh_database(functools.partial(_measure, params))


def main(args: argparse.Namespace) -> None:
    """Entry point of ``warroom bench notify``."""
    harness.report(args, lambda: run(Parameters.from_args(args)), _table)
