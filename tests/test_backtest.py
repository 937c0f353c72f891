"""`warroom backtest` and `warroom rules check`: the live rule engine over CSV history, causal, per row."""

import csv
import math
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = """
rules:
  - name: cpu_high
    kind: static
    metric: cpu
    window: 1m
    for: 2m
    summary: {en: "cpu {value}", zh: "CPU {value}"}
    runbook: {en: scale out, zh: 扩容}
    conditions:
      emergency: {op: ">", value: 95}
      warning: {op: ">", value: 80}
"""


def write_series(
    path: Path,
    rows: int,
    spike_at: int | None = None,
    columns: tuple[str, ...] = ("value",),
    step: timedelta = timedelta(minutes=5),
    jitter_s: float = 0.0,
    period: int = 288,
) -> None:
    """A daily-seasonal series (``period`` rows per cycle) with an optional 2.5x spike of 6 rows."""
    rng = random.Random(7)
    start = datetime(2025, 11, 1, tzinfo=UTC)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("timestamp", *columns))
        for i in range(rows):
            base = 100 + 20 * math.sin(2 * math.pi * i / period) + rng.gauss(0, 2)
            value = base * 2.5 if spike_at is not None and spike_at <= i < spike_at + 6 else base
            moment = start + step * i + timedelta(seconds=rng.uniform(-jitter_s, jitter_s))
            writer.writerow((moment.isoformat(), *([f"{value:.2f}"] * len(columns))))


def warroom(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_default_dynamic_rule_over_a_directory(tmp_path):
    write_series(tmp_path / "in" / "a" / "traffic.csv", 1200, spike_at=1000)
    write_series(tmp_path / "in" / "b" / "quiet.csv", 1200)
    result = warroom("backtest", "--series", str(tmp_path / "in"), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "rows/s" in result.stderr and "total: 2 series, 2400 rows" in result.stdout
    traffic = read(tmp_path / "out" / "a" / "traffic.csv")
    assert len(traffic) == 1200 and list(traffic[0]) == ["timestamp", "value", "score", "severity", "firing"]
    assert all(r["score"] == "0.0000" and r["firing"] == "0" for r in traffic[:300]), "warm-up"
    assert traffic[1000]["firing"] == "1" and float(traffic[1000]["score"]) > 0.5 and traffic[1000]["severity"]
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in traffic)
    quiet = read(tmp_path / "out" / "b" / "quiet.csv")
    assert sum(r["firing"] == "1" for r in quiet) < 12


def test_backtest_is_causal(tmp_path):
    write_series(tmp_path / "full.csv", 900, spike_at=700)
    write_series(tmp_path / "cut.csv", 720, spike_at=700)
    for name in ("full", "cut"):
        assert (
            warroom("backtest", "--series", str(tmp_path / f"{name}.csv"), "--out", str(tmp_path / "out")).returncode
            == 0
        )
    full, cut = read(tmp_path / "out" / "full.csv"), read(tmp_path / "out" / "cut.csv")
    assert full[:720] == cut


def test_static_rule_file_with_for_and_tiers(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    path = tmp_path / "cpu.csv"
    start = datetime(2025, 1, 1, tzinfo=UTC)
    values = [50] * 10 + [85] * 3 + [99] * 2 + [50] * 5
    path.write_text(
        "timestamp,cpu\n" + "".join(f"{(start + timedelta(minutes=i)).isoformat()},{v}\n" for i, v in enumerate(values))
    )
    result = warroom("backtest", "--rules", str(rules), "--series", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    rows = read(tmp_path / "out" / "cpu.csv")
    assert [r["firing"] for r in rows] == ["0"] * 12 + ["1"] * 3 + ["0"] * 5
    assert rows[10]["severity"] == "warning" and rows[10]["score"] == "1.0000", "pending during for"
    assert [r["severity"] for r in rows[12:15]] == ["warning", "emergency", "emergency"]


def test_rules_check_names_the_line(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text((ROOT / "rules" / "double11.yaml").read_text())
    bad.write_text(
        (ROOT / "rules" / "double11.yaml").read_text().replace("metric: stock_on_hand", "metric: stock_onhand", 1)
    )
    ok = warroom("rules", "check", str(good))
    assert ok.returncode == 0 and "rules" in ok.stdout
    failed = warroom("rules", "check", str(bad))
    line = bad.read_text().splitlines().index("  - name: stock_low") + 1
    assert failed.returncode == 1 and f"{bad}:{line}:" in failed.stderr
    assert "unknown metric 'stock_onhand'" in failed.stderr


def test_hourly_series_warm_up_in_rows_and_catch_a_spike(tmp_path):
    write_series(tmp_path / "hourly.csv", 700, spike_at=600, step=timedelta(hours=1), period=24)
    result = warroom("backtest", "--series", str(tmp_path / "hourly.csv"), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    rows = read(tmp_path / "out" / "hourly.csv")
    assert all(r["score"] == "0.0000" for r in rows[:300]), "warm-up is counted in rows, whatever the spacing"
    assert rows[600]["firing"] == "1"
    assert sum(r["firing"] == "1" for r in rows[300:600]) < 6


def test_irregular_timestamps_are_judged_row_by_row_like_the_detector(tmp_path):
    """Jittered spacing must neither raise false alarms (rows falling two to a window) nor look ahead."""
    from alerts.evaluation import backtest
    from alerts.evaluation.detectors import score_series

    write_series(tmp_path / "full.csv", 1500, jitter_s=100)
    with (tmp_path / "full.csv").open(newline="") as f:
        series = backtest.Series.read(f, "full.csv")
    direct = score_series(series.timestamps, series.columns["value"])  # type: ignore[arg-type]
    lines = (tmp_path / "full.csv").read_text().splitlines(keepends=True)
    (tmp_path / "cut.csv").write_text("".join(lines[:1001]))
    for name in ("full", "cut"):
        assert (
            warroom("backtest", "--series", str(tmp_path / f"{name}.csv"), "--out", str(tmp_path / "out")).returncode
            == 0
        )
    full, cut = read(tmp_path / "out" / "full.csv"), read(tmp_path / "out" / "cut.csv")
    assert full[:1000] == cut
    assert [r["score"] for r in full] == [f"{min(1.0, a.score):.4f}" for a in direct]
    assert not any(r["firing"] == "1" for r in full)


def test_every_file_starts_fresh_and_a_bad_file_does_not_stop_the_rest(tmp_path):
    write_series(tmp_path / "in" / "a.csv", 800, spike_at=500)
    write_series(tmp_path / "in" / "b.csv", 800, spike_at=500)
    (tmp_path / "in" / "c_other_column.csv").write_text("timestamp,orders\n2025-11-01T00:00:00Z,5\n")
    result = warroom("backtest", "--series", str(tmp_path / "in"), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "c_other_column.csv: no 'value' column" in result.stderr and "--rules" in result.stderr
    assert read(tmp_path / "out" / "a.csv") == read(tmp_path / "out" / "b.csv"), "b must not inherit a's detector"
    assert "total: 2 series, 1600 rows" in result.stdout and "1 file(s) failed" in result.stdout


def test_static_rules_never_read_a_row_before_its_turn(tmp_path):
    """A row that comes sooner than the usual spacing must not leak into the previous row's window."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("for: 2m", "for: 0s"))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    moments = [start + timedelta(minutes=m) for m in range(3)] + [start + timedelta(minutes=2, seconds=10)]
    (tmp_path / "cpu.csv").write_text(
        "timestamp,cpu\n" + "".join(f"{m.isoformat()},{v}\n" for m, v in zip(moments, (1, 1, 1, 99), strict=False))
    )
    result = warroom(
        "backtest", "--rules", str(rules), "--series", str(tmp_path / "cpu.csv"), "--out", str(tmp_path / "out")
    )
    assert result.returncode == 0, result.stderr
    assert [r["severity"] for r in read(tmp_path / "out" / "cpu.csv")] == ["", "", "", "emergency"]


def test_an_unreadable_csv_is_reported_with_its_name(tmp_path):
    write_series(tmp_path / "in" / "good.csv", 400)
    (tmp_path / "in" / "huge.csv").write_text("timestamp,value\n2025-01-01T00:00:00Z," + "9" * 200_000 + "\n")
    result = warroom("backtest", "--series", str(tmp_path / "in"), "--out", str(tmp_path / "out"))
    assert result.returncode == 1 and "huge.csv" in result.stderr
    assert "total: 1 series, 400 rows" in result.stdout


def test_epoch_timestamps_and_a_byte_order_mark_are_read(tmp_path):
    """Exported series often carry epoch seconds or milliseconds, and spreadsheets write a BOM."""
    write_series(tmp_path / "iso.csv", 700, spike_at=600)
    rows = (tmp_path / "iso.csv").read_text().splitlines()
    for name, scale in (("seconds", 1), ("millis", 1000)):
        body = [rows[0]] + [
            f"{int(datetime.fromisoformat(r.split(',')[0]).timestamp() * scale)},{r.split(',')[1]}" for r in rows[1:]
        ]
        (tmp_path / f"{name}.csv").write_text("\ufeff" + "\n".join(body) + "\n", encoding="utf-8")
    for name in ("iso", "seconds", "millis"):
        result = warroom("backtest", "--series", str(tmp_path / f"{name}.csv"), "--out", str(tmp_path / "out"))
        assert result.returncode == 0, result.stderr
    iso, seconds, millis = (read(tmp_path / "out" / f"{n}.csv") for n in ("iso", "seconds", "millis"))
    assert [r["score"] for r in seconds] == [r["score"] for r in millis] == [r["score"] for r in iso]
    assert seconds[600]["firing"] == "1"
