"""``warroom bench cpu``: CPU per event of the pure stages an event passes through, without I/O.

The ingest benchmark measures the whole system, where every stage shares two
cores and the machine's speed drifts between runs. This one times the stages
alone, in this process, on the ingest benchmark's event mix: validating a
``{"events": [...]}`` body (one typed decode of the whole body, and the
per-item path a body with a bad event takes: envelope, array, then each event), turning stored rows into the
engine's ``Event``, and ``Engine.apply``. Reported in microseconds per event:
the minimum (the code's cost on an undisturbed core) and the median.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any

import msgspec

from app.core.settings import Settings
from app.ingest.events import Defaults, decode_batch, decode_event, utcnow
from app.metrics.engine import Engine
from app.metrics.live import to_event
from bench import harness, workload
from bench.harness import step

BATCH_EVENTS = 500
VALIDATION_REPEATS = 60
"""Validation runs per ``--repeat``: a 500-event body takes milliseconds, the engine run seconds."""


def _timed_us(stages: dict[str, tuple[Callable[[], Any], int]], repeat: int) -> dict[str, dict[str, float]]:
    """Per stage, the minimum and median microseconds per event over ``repeat`` runs.

    The stages take turns within each repeat, so a slow spell of a shared VM hits all of them alike.
    """
    times: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(repeat):
        for name, (run, events) in stages.items():
            started = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - started) / events * 1e6)
    return {name: {"min": round(min(t), 2), "median": round(statistics.median(t), 2)} for name, t in times.items()}


def _tail_rows(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows the metrics tail would read for ``events`` (as asyncpg returns them: a tuple per row)."""
    rows = []
    for seq, row in enumerate(workload.storage_tails(events), start=1):
        (
            type_,
            occurred_at,
            campaign,
            channel,
            user_id,
            anonymous_id,
            _session,
            order_id,
            sku,
            quantity,
            amount,
            currency,
            warehouse,
            metric,
            value,
            labels,
            _props,
        ) = row
        rows.append(
            (
                seq,
                type_,
                occurred_at.astimezone(UTC).timestamp(),
                campaign,
                channel,
                user_id,
                anonymous_id,
                order_id,
                sku,
                quantity,
                amount,
                warehouse,
                metric,
                value,
                labels,
                currency,
            )
        )
    return rows


def measure(args: argparse.Namespace) -> dict[str, Any]:
    harness.check_option("events", args.events, BATCH_EVENTS, 2_000_000)
    harness.check_option("repeat", args.repeat, 1, 100)
    settings = Settings.from_env({})
    defaults = Defaults(campaign=settings.default_campaign, currency=settings.default_currency)
    with step(f"building {args.events:,} workload events"):
        events = workload.sample_events(args.events)
        ids = [workload.event_id("cpu", n) for n in range(BATCH_EVENTS)]
        body = workload.encode(events[:BATCH_EVENTS], ids, batch=True)
        rows = _tail_rows(events)
    gc.collect()
    gc.freeze()  # as the servers do after start-up: the test data must not make every collection long
    now = utcnow()

    def whole() -> None:
        assert decode_batch(body, BATCH_EVENTS, now, defaults) is not None

    def per_item() -> None:
        envelope = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
        for raw in msgspec.json.decode(envelope["events"], type=list[msgspec.Raw]):
            decode_event(raw, now, defaults)

    definition = workload.campaign()

    def apply() -> None:
        Engine([definition]).apply(map(to_event, rows))

    with step("timing") as notes:
        validation = _timed_us(
            {"validate_batch_us": (whole, BATCH_EVENTS), "validate_per_item_us": (per_item, BATCH_EVENTS)},
            args.repeat * VALIDATION_REPEATS,
        )
        engine = _timed_us({"engine_apply_us": (apply, args.events)}, args.repeat)
        notes.append(f"engine {engine['engine_apply_us']['median']} us/event")
    return {
        "events": args.events,
        "repeat": args.repeat,
        **validation,
        **engine,
        "machine": harness.machine(),
        "code": harness.code_version(),
    }


def _table(report: dict[str, Any]) -> str:
    lines = [f"{'us/event':37} {'min':>7} {'median':>7}"]
    for key, label in (
        ("validate_batch_us", "validate a batch body, one decode"),
        ("validate_per_item_us", "validate it item by item"),
        ("engine_apply_us", "tail row -> Event + Engine.apply"),
    ):
        lines.append(f"{label:37} {report[key]['min']:7.2f} {report[key]['median']:7.2f}")
    lines.append(
        f"({report['events']:,} events per engine run, {report['repeat']} runs; "
        f"validation {report['repeat'] * VALIDATION_REPEATS} runs of {BATCH_EVENTS} events)"
    )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> None:
    harness.report(args, lambda: measure(args), _table)
