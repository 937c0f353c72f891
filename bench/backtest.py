"""``warroom bench backtest``: how long ``warroom backtest`` takes over a corpus of generated series.

Issue 14's bar is 400,000 rows in under 30 s with the default dynamic
rule. The corpus is written to a temporary directory as ``--files`` CSVs of
minute data with daily and weekly seasons, noise, trends, and injected
anomalies (spikes, dips, level shifts), like the labelled business series the
detector is tuned on; then the real command runs in its own process, timed
from start to exit (interpreter start, CSV parsing and output included).
"""

from __future__ import annotations

import argparse
import math
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import harness
from bench.harness import BenchError, step

SEED = 20261123
TARGET_ROWS = 400_000
TARGET_SECONDS = 30.0
START = datetime(2025, 10, 1, tzinfo=UTC)
DAY_MINUTES = 1440
ANOMALIES_PER_FILE = 3


def _series(rng: random.Random, rows: int) -> list[str]:
    """One CSV: a seasonal minute series with noise, drift and a few injected anomalies."""
    level = rng.uniform(50, 5_000)
    daily, weekly = rng.uniform(0.1, 0.6), rng.uniform(0.0, 0.2)
    noise, drift = rng.uniform(0.01, 0.08), rng.uniform(-0.2, 0.4) / rows
    anomalies = {rng.randrange(rows // 3, rows): rng.choice((3.0, 0.2, 1.6)) for _ in range(ANOMALIES_PER_FILE)}
    lines = ["timestamp,value\n"]
    shift, remaining = 1.0, 0
    for i in range(rows):
        if i in anomalies:
            shift, remaining = anomalies[i], rng.randrange(5, 60)
        factor = shift if remaining > 0 else 1.0
        remaining -= 1
        season = (
            1 + daily * math.sin(2 * math.pi * i / DAY_MINUTES) + weekly * math.sin(2 * math.pi * i / (7 * DAY_MINUTES))
        )
        value = level * (1 + drift * i) * season * factor * (1 + rng.gauss(0, noise))
        lines.append(f"{(START + timedelta(minutes=i)).isoformat()},{value:.3f}\n")
    return lines


def _write_corpus(directory: Path, rows: int, files: int) -> None:
    rng = random.Random(SEED)
    per_file = rows // files
    for number in range(files):
        count = per_file + (1 if number < rows % files else 0)
        (directory / f"series-{number:03d}.csv").write_text("".join(_series(rng, count)))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    harness.check_option("rows", args.rows, 1_000, 10_000_000)
    harness.check_option("files", args.files, 1, 1_000)
    if args.rows // args.files < 2:
        raise BenchError("--rows must give every file at least two rows")
    with tempfile.TemporaryDirectory(prefix="warroom-bench-backtest-") as tmp:
        series, out = Path(tmp) / "series", Path(tmp) / "out"
        series.mkdir()
        with step(f"writing {args.rows:,} rows in {args.files} CSV files"):
            _write_corpus(series, args.rows, args.files)
        print("warroom backtest (default dynamic rule), its progress:", file=sys.stderr, flush=True)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", "backtest", "--series", str(series), "--out", str(out)],
            stdout=subprocess.PIPE,
            text=True,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise BenchError(f"warroom backtest exited with status {done.returncode} (its errors are above)")
        written = sum(sum(1 for _ in path.open()) - 1 for path in out.rglob("*.csv"))
        if written != args.rows:
            raise BenchError(f"backtest wrote {written} rows for {args.rows} input rows")
        summary = done.stdout.strip().splitlines()[-1]
    rows_per_s = args.rows / seconds
    return {
        "rows": args.rows,
        "files": args.files,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows_per_s),
        "seconds_for_400k_rows": round(TARGET_ROWS / rows_per_s, 1),
        "summary": summary,
        "targets": {"400k_rows_under_30_s": TARGET_ROWS / rows_per_s < TARGET_SECONDS},
        "machine": harness.machine(),
        "code": harness.code_version(),
    }


def _table(report: dict[str, Any]) -> str:
    met = "met" if report["targets"]["400k_rows_under_30_s"] else "MISSED"
    return "\n".join(
        [
            f"rows                 {report['rows']:,} in {report['files']} files",
            f"wall time            {report['seconds']:.1f} s (process start to exit)",
            f"throughput           {report['rows_per_s']:,} rows/s",
            f"400,000 rows take    {report['seconds_for_400k_rows']:.1f} s (target < {TARGET_SECONDS:g} s: {met})",
            f"backtest said        {report['summary']}",
        ]
    )


def main(args: argparse.Namespace) -> None:
    harness.report(args, lambda: measure(args), _table)
