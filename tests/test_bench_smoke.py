"""The benchmarks still run end to end and report what they promise (no timing assertions).

Each runs as ``warroom bench ...`` would, in a subprocess with tiny parameters,
so a change in the server, the engine or the rules format that breaks a
benchmark shows up here rather than on the day someone needs the numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

BENCH_TIMEOUT_S = 60
WALL_TIMEOUT_S = 240
"""The wall bench loads plotly.js into real browsers, which on a busy 2-core machine takes its time."""
TINY = ("--seconds", "2", "--rate", "300", "--json")


def bench(*args: str, timeout_s: float = BENCH_TIMEOUT_S) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "bench", *args], capture_output=True, text=True, timeout=timeout_s
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_bench_metrics_reports_freshness_and_memory() -> None:
    report = bench("metrics", *TINY, "--memory-events", "20000")
    assert report["samples"] > 0 and report["uncovered_posts"] == 0
    assert 0 <= report["snapshot_latency_p50_ms"] <= report["snapshot_latency_p99_ms"]
    assert report["events_per_s"] > 0 and report["accepted_events"] > 0
    assert report["rss_mb"] > 0
    by_events = report["memory_rss_mb_by_events"]
    assert [events for events, _ in by_events] == [2_000 * n for n in range(11)]
    assert all(rss > 0 for _, rss in by_events)
    assert report["pickled_state_bytes"] > 0
    assert {"snapshot_p99_met", "rate_met"} <= set(report["targets"])
    assert report["machine"]["cores"] >= 1


def test_bench_alerts_reports_alert_latency_and_evaluation_time() -> None:
    report = bench("alerts", *TINY, "--rules", "20")
    assert report["rules"] == 20
    assert report["trials"] > 0 and report["missed"] == 0 and report["samples"] == report["trials"]
    assert 0 <= report["alert_latency_p50_ms"] <= report["alert_latency_p99_ms"]
    assert report["other_rules_firing"] == []
    assert report["events_per_s"] > 0
    assert report["eval_ms_per_tick"]["samples"] > 0 and report["eval_ms_per_tick"]["median"] >= 0
    assert report["series_per_evaluation"] > 0
    assert {"alert_p99_met", "rate_met", "rules_met"} <= set(report["targets"])


def test_bench_notify_reports_websocket_and_webhook_latency() -> None:
    report = bench("notify", "--trials", "3", "--rate", "200", "--json")
    assert report["trials"] == report["seen_on_websocket"] == report["seen_at_webhook"] == 3
    assert 0 <= report["ws_latency_p50_ms"] <= report["ws_latency_p99_ms"]
    assert report["post_to_ws_p50_ms"] <= report["webhook_latency_p50_ms"], "the webhook waits out group_wait"
    assert report["webhook_messages"] >= 3
    assert {"ws_met", "webhook_met"} <= set(report["targets"])


def test_bench_backtest_times_the_real_command() -> None:
    report = bench("backtest", "--rows", "3000", "--files", "2", "--json")
    assert report["rows"] == 3000 and report["files"] == 2
    assert report["summary"].startswith("total: 2 series, 3000 rows")
    assert report["rows_per_s"] > 0 and report["seconds"] > 0
    assert "400k_rows_under_30_s" in report["targets"] and "postgresql" not in report["machine"]


def test_bench_cpu_times_validation_and_the_engine() -> None:
    report = bench("cpu", "--events", "2000", "--repeat", "1", "--json")
    assert report["events"] == 2000
    for stage in ("validate_batch_us", "validate_per_item_us", "engine_apply_us"):
        assert 0 < report[stage]["min"] <= report[stage]["median"], stage


def test_bench_ingest_measures_the_tier_alone_and_all_in_one() -> None:
    report = bench("ingest", "--seconds", "1", "--single-rate", "200", "--history-rows", "20000", "--json")
    assert report["parameters"]["history_rows"] == 20_000
    assert report["batch_deployment"] == "ingest tier alone"
    assert (
        report["copy_rows_per_s"] > 0
        and report["batch_events_per_s"] > 0
        and report["all_in_one_batch_events_per_s"] > 0
    )
    assert abs(report["ratio_to_copy"] - report["batch_events_per_s"] / report["copy_rows_per_s"]) <= 0.001
    assert {"tier_batch", "batch", "single", "single_paced"} <= set(report["phases"])
    assert report["engine_reads_rows"] == report["phases"]["tier_batch"]["accepted_events"] + 10_000, "warm-up included"
    assert report["stored_events_match"] and report["errors"] == 0 and report["server_stopped_cleanly"]


def test_bench_ingest_without_ingest_processes_measures_the_server_alone() -> None:
    report = bench("ingest", "--seconds", "1", "--single-rate", "200", "--ingest-processes", "0", "--json")
    assert report["batch_deployment"] == "all in one" and report["engine_reads_rows"] is None
    assert "tier_batch" not in report["phases"]
    assert report["batch_events_per_s"] == report["all_in_one_batch_events_per_s"]
    assert report["stored_events_match"]


def test_detector_eval_scores_the_paging_decisions_per_family() -> None:
    """The detector benchmark's paging scorer runs each file through warroom backtest's path: the clock family's
    repeated and stepped-back times are judged, not refused, and every family is scored and paged on its own."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.detector_eval", "--split", "holdout", "--json"]
        + ["--family", "clock", "--family", "sparse_counts", "--detector", "paging", "--detector", "null"],
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    paging, null = report["detectors"]["paging"], report["detectors"]["null"]
    assert paging["refused"] == []
    assert set(paging["per_family"]["holdout"]) == {"clock", "sparse_counts"}
    assert paging["per_family"]["holdout"]["clock"]["standard_counts"]["detected"] > 0
    assert paging["holdout"]["threshold"] == 1.0, "fixed decisions, no threshold sweep"
    pages = paging["pages"]["holdout"]
    assert pages["all"]["pages"] >= paging["holdout"]["standard_counts"]["detected"]
    assert pages["per_family"]["clock"]["quiet_rows"] > 0 and pages["all"]["quiet_per_2000_rows"] is not None
    assert null["holdout"]["standard"] == 0.0 and null["per_family"]["holdout"]["clock"]["standard"] == 0.0


def test_bench_wall_times_the_value_on_every_screen() -> None:
    report = bench(
        "wall",
        "--screens",
        "2",
        "--rate",
        "200",
        "--probes",
        "20",
        "--seconds",
        "8",
        "--json",
        timeout_s=WALL_TIMEOUT_S,
    )
    assert report["screens"] == report["server_wall_pages"] == report["server_wall_pages_after"] == 2, (
        "each screen is its own websocket"
    )
    assert report["probes"] == 20 and report["samples"] == 40 and report["missed_samples"] == 0
    assert report["unexpected_texts"] == [], "only the probes move the watched tile"
    assert 0 < report["screen_latency_p50_ms"] <= report["screen_latency_p95_ms"] <= report["screen_latency_max_ms"]
    assert report["screen_latency_max_ms"] < 20_000
    assert report["frame_latency_p50_ms"] >= report["screen_latency_p50_ms"], "painted after the DOM changed"
    assert [s["samples"] for s in report["per_screen"]] == [20, 20]
    assert report["clock_skew_ms_max"] <= report["clock_check_bound_ms_max"] + 1, (
        "the pages' clock and the benchmark's are the same system clock, to within the time it takes to read it"
    )
    assert report["events_per_s"] > 0 and report["background_events"] > 0
    assert report["long_tasks_over_200ms"] >= 0 and report["long_tasks_over_50ms"] >= report["long_tasks_over_200ms"]
    assert report["cpu_cores"]["browser"] > 0
    traced = report["traced_long_tasks"]
    assert traced["renderers"] >= 2, "every screen renders in its own process"
    assert traced["over_200ms_cpu"] <= traced["over_200ms_wall"] <= traced["tasks_over_50ms"]
    assert {"p95_met", "long_tasks_met", "at_target_load"} <= set(report["targets"])
    assert not report["targets"]["at_target_load"]
    assert report["rendered_screens"] == 2 and report["subscriber_screens"] == 0 and report["per_subscriber"] == []


def test_bench_wall_subscribers_receive_every_probe() -> None:
    """``--rendered 1`` of ``--screens 3``: one Chromium page, two websocket subscribers replaying its messages."""
    report = bench(
        "wall",
        "--screens",
        "3",
        "--rendered",
        "1",
        "--rate",
        "200",
        "--probes",
        "20",
        "--seconds",
        "8",
        "--json",
        timeout_s=WALL_TIMEOUT_S,
    )
    assert report["screens"] == 3 and report["rendered_screens"] == 1 and report["subscriber_screens"] == 2
    assert report["server_wall_pages"] == report["server_wall_pages_after"] == 3, (
        "the server runs a push loop for every subscriber, as for a page"
    )
    assert report["samples"] == 20 and report["missed_samples"] == 0, "the rendered screen is measured as before"
    assert report["subscriber_samples"] == 40 and report["subscriber_missed_samples"] == 0
    assert [s["samples"] for s in report["per_subscriber"]] == [20, 20]
    assert all(s["closed"] is None for s in report["per_subscriber"]), "subscribers stayed connected to the end"
    assert report["unexpected_texts"] == []
    assert 0 < report["subscriber_latency_p50_ms"] <= report["subscriber_latency_p95_ms"]
    assert report["subscriber_latency_max_ms"] < 20_000
    assert report["subscriber_frames"] > 0 and report["subscriber_bytes"] > 0
    assert report["browser"]["contexts"] == 1
