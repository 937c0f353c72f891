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
    assert all(r["score"] == "0.0" and r["firing"] == "0" for r in traffic[:300]), "warm-up"
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
    assert rows[10]["severity"] == "warning" and rows[10]["score"] == "1.0", "pending during for"
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
    assert all(r["score"] == "0.0" for r in rows[:300]), "warm-up is counted in rows, whatever the spacing"
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
    assert [r["score"] for r in full] == [repr(min(1.0, a.score)) for a in direct]
    assert not any(r["firing"] == "1" for r in full)


def test_every_file_starts_fresh_and_a_bad_file_does_not_stop_the_rest(tmp_path):
    write_series(tmp_path / "in" / "a.csv", 800, spike_at=500)
    write_series(tmp_path / "in" / "b.csv", 800, spike_at=500)
    (tmp_path / "in" / "c_other_column.csv").write_text("timestamp,orders\n2025-11-01T00:00:00Z,5\n")
    result = warroom("backtest", "--series", str(tmp_path / "in"), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "c_other_column.csv:1: no 'value' column" in result.stderr and "--rules" in result.stderr
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


def messy_export(path: Path) -> dict[str, int]:
    """A spreadsheet export as they come: a BOM, local time without an offset (the clocks go back an hour at
    row 400, so an hour of stamps repeats), five rows exported twice, NaN, inf, empty and unreadable cells,
    three hours without rows, a footer row without a time, and a 2.5x spike at row 600. Returns the line
    numbers the checks need."""
    rng = random.Random(11)
    start = datetime(2025, 10, 20)
    rows: list[tuple[str, str]] = []
    lines: dict[str, int] = {}
    offset = timedelta(hours=2)
    for i in range(700):
        if 500 <= i < 536:
            continue
        if i == 400:
            offset -= timedelta(hours=1)
            lines["step_back"] = len(rows) + 2
        if i == 450:
            lines["repeat"] = len(rows) + 2
            rows.extend(rows[-5:])
        value = 100 + 20 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 2)
        cell = f"{value * 2.5 if 600 <= i < 606 else value:.2f}"
        cell = {480: "NaN", 481: "", 482: "inf", 483: "n/a"}.get(i, cell)
        if i in (480, 536):
            lines["nan" if i == 480 else "after_gap"] = len(rows) + 2
        if i == 600:
            lines["spike"] = len(rows) + 2
        rows.append(((start + offset + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S"), cell))
    rows.append(("total", "71234"))
    lines["footer"] = len(rows) + 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\ufefftimestamp,value\n" + "".join(f"{t},{v}\n" for t, v in rows), encoding="utf-8")
    return lines


def test_a_messy_real_export_is_backtested_with_its_quirks_reported(tmp_path):
    """Repeated and stepped-back times are late rows (warned with file and line), bad cells and gaps are counted."""
    lines = messy_export(tmp_path / "in" / "messy.csv")
    write_series(tmp_path / "in" / "clean.csv", 400)
    result = warroom("backtest", "--series", str(tmp_path / "in"), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    source = tmp_path / "in" / "messy.csv"
    assert f"{source}:{lines['step_back']}: timestamp '2025-10-21 10:20:00' steps back 0:55:00 from line 401's" in (
        result.stderr
    )
    assert "12 rows (to line" in result.stderr and "judged as late rows at the latest time seen" in result.stderr
    assert f"{source}:{lines['repeat']}: timestamp" in result.stderr and "5 rows (to line" in result.stderr
    assert f"{source}:{lines['footer']}: skipped, no readable timestamp" in result.stderr
    summary = next(line for line in result.stdout.splitlines() if line.startswith("messy.csv:"))
    assert "; 17 late rows (time repeated or stepped back), 1 empty cells, 2 NaN/inf cells, 1 unreadable cells" in (
        summary
    )
    assert f"1 rows skipped (no readable timestamp), 1 gaps (longest 3:05:00 before line {lines['after_gap']})" in (
        summary
    )
    assert not any(line.startswith("clean.csv:") and ";" in line for line in result.stdout.splitlines())
    assert "total: 2 series" in result.stdout
    text = source.read_text(encoding="utf-8-sig").splitlines()[1:-1]
    out = read(tmp_path / "out" / "messy.csv")
    assert [r["timestamp"] for r in out] == [line.split(",")[0] for line in text], "every row, its own time"
    assert [r["value"] for r in out[lines["nan"] - 2 : lines["nan"] + 2]] == ["", "", "", ""]
    assert out[lines["spike"] - 2]["firing"] == "1", "a spike after all of it is still caught"


def test_late_rows_are_judged_at_the_latest_time_and_scores_keep_every_digit(tmp_path):
    """The detector never sees time go backwards: the backtest's scores are the detector's own, fed each late
    row at the latest time seen, written in full so distinct scores stay distinct."""
    from alerts.evaluation import backtest
    from alerts.evaluation.detectors import score_series

    messy_export(tmp_path / "messy.csv")
    with (tmp_path / "messy.csv").open(newline="", encoding="utf-8-sig") as f:
        series = backtest.Series.read(f, "messy.csv")
    assert all(a <= b for a, b in zip(series.timestamps, series.timestamps[1:], strict=False))
    assert series.quality.late_rows == 17 and len(series.quality.warnings) == 3
    latest, expected_times = -math.inf, []
    for raw in series.raw_timestamps:
        latest = max(latest, datetime.fromisoformat(raw).replace(tzinfo=UTC).timestamp())
        expected_times.append(latest)
    assert series.timestamps == expected_times
    values = [math.nan if v is None else v for v in series.columns["value"]]
    direct = [min(1.0, a.score) for a in score_series(expected_times, values)]
    assert warroom("backtest", "--series", str(tmp_path / "messy.csv"), "--out", str(tmp_path / "out")).returncode == 0
    scores = [r["score"] for r in read(tmp_path / "out" / "messy.csv")]
    assert scores == [repr(s) for s in direct]
    assert len(set(scores)) == len(set(direct)) > 5


def test_only_a_file_without_a_timestamp_header_is_refused(tmp_path):
    write_series(tmp_path / "in" / "good.csv", 400)
    (tmp_path / "in" / "no_header.csv").write_text("2025-11-01T00:00:00Z,5\n2025-11-01T00:01:00Z,6\n")
    (tmp_path / "in" / "empty.csv").write_text("")
    (tmp_path / "in" / "spaced.csv").write_text(" Timestamp , value\n2025-11-01T00:00:00Z, 5\n")
    result = warroom("backtest", "--series", str(tmp_path / "in"), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert f"{tmp_path / 'in' / 'no_header.csv'}:1: needs a header row with a timestamp column" in result.stderr
    assert f"{tmp_path / 'in' / 'empty.csv'}:1: needs a header row with a timestamp column" in result.stderr
    assert "spaced.csv" not in result.stderr
    assert "total: 2 series, 401 rows" in result.stdout and "2 file(s) failed" in result.stdout


def test_an_export_that_is_not_utf8_is_read_with_a_warning(tmp_path):
    """Spreadsheets in Chinese locales save CSV as GBK: the numbers and times are still there to judge."""
    write_series(tmp_path / "utf8.csv", 700, spike_at=600)
    lines = (tmp_path / "utf8.csv").read_text().splitlines()
    body = [lines[0] + ",备注"] + [f"{line},{'大促' if i == 40 else ''}" for i, line in enumerate(lines[1:], start=2)]
    (tmp_path / "gbk.csv").write_bytes(("\n".join(body) + "\n").encode("gbk"))
    result = warroom("backtest", "--series", str(tmp_path / "gbk.csv"), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert f"{tmp_path / 'gbk.csv'}:1: not UTF-8; read with the undecodable bytes replaced" in result.stderr
    assert warroom("backtest", "--series", str(tmp_path / "utf8.csv"), "--out", str(tmp_path / "out")).returncode == 0
    gbk, utf8 = read(tmp_path / "out" / "gbk.csv"), read(tmp_path / "out" / "utf8.csv")
    assert gbk == utf8 and gbk[600]["firing"] == "1"
