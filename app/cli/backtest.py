"""The files of ``warroom backtest``: every CSV under ``--series`` run through ``alerts.evaluation.backtest``.

The pure module parses a series and scores it into a stream; here are the parts
that touch the disk and the terminal: walking the directory, opening each input
and its output (mirroring the input tree), and the progress lines on stderr.
"""

from __future__ import annotations

import csv
import functools
import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from alerts.evaluation.backtest import DEFAULT_COLUMN, Series, default_rules, run_series
from alerts.evaluation.rules import DynamicRule, load_for_series

PROGRESS_EVERY_S = 2.0
"""A progress line is printed at most this often (and once after the last file)."""


def _inputs(path: Path) -> Iterator[tuple[Path, Path]]:
    """(input file, its path relative to the --series argument) for a file or every CSV under a directory."""
    if path.is_dir():
        for found in sorted(path.rglob("*.csv")):
            yield found, found.relative_to(path)
    else:
        yield path, Path(path.name)


def _read(source: Path) -> Series:
    """Parse one CSV. A file that is not UTF-8 (a spreadsheet saved as GBK, say) is read with its undecodable
    bytes replaced, which leaves timestamps and numbers intact, and a warning names its first such line."""
    try:
        with source.open(newline="", encoding="utf-8-sig") as stream:  # a spreadsheet's BOM is no column name
            return Series.read(stream, str(source))
    except UnicodeDecodeError:
        raw = source.read_bytes()
    start = 0
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
    line = raw.count(b"\n", 0, start) + 1
    data = Series.read(io.StringIO(raw.decode("utf-8-sig", errors="replace"), newline=""), str(source))
    data.quality.warnings.insert(
        0,
        f"{source}:{line}: not UTF-8; read with the undecodable bytes replaced"
        " (a column named in other than ASCII may not match its rule)",
    )
    return data


def run(series: Path, out: Path, rules_file: Path | None, *, clock: Callable[[], float]) -> int:
    """Backtest every CSV under ``series`` into ``out``; an unreadable file is reported and skipped (exit status 1).
    A file's quirks (late rows, empty or NaN cells, gaps) are counted on its summary line, and their warnings,
    each naming file and line, go to stderr.
    ``clock`` (seconds, e.g. ``time.monotonic``) only paces the progress lines and the total's duration."""
    rules = load_for_series(rules_file).rules if rules_file else default_rules()
    files = list(_inputs(series))
    if not files:
        print(f"warroom: no CSV files under {series}", file=sys.stderr)
        return 1
    total_rows, total_alerts, failed, started = 0, 0, 0, clock()
    last_print = started

    def report(number: int, rows_done: int) -> None:
        nonlocal last_print
        now = clock()
        if now - last_print >= PROGRESS_EVERY_S or (number == len(files) and rows_done == 0):
            last_print = now
            rows = total_rows + rows_done
            rate = rows / max(now - started, 1e-9)
            print(
                f"[{number}/{len(files)}] {rows:,} rows · {total_alerts} alerts · {rate:,.0f} rows/s", file=sys.stderr
            )

    for number, (source, relative) in enumerate(files, start=1):
        target = out / relative if series.is_dir() or out.suffix != ".csv" else out
        try:
            data = _read(source)
            missing = sorted({r.metric for r in rules if isinstance(r, DynamicRule)} - set(data.columns))
            if not rules_file and missing:
                raise ValueError(
                    f"{source}:1: no {DEFAULT_COLUMN!r} column for the default rule (columns: "
                    f"{', '.join(data.columns) or 'none'}); pass --rules naming the columns to watch"
                )
        except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
            message = str(exc) if str(source) in str(exc) else f"{source}: {exc}"
            print(f"warroom: {message}", file=sys.stderr)
            failed += 1
            continue
        for warning in data.quality.warnings:
            print(f"warroom: {warning}", file=sys.stderr)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", newline="", encoding="utf-8") as stream:
            summary = run_series(data, rules, stream, functools.partial(report, number))
        total_rows += summary.rows
        total_alerts += summary.alerts
        report(number, 0)
        carried = summary.quality.describe()
        print(
            f"{relative}: {summary.rows} rows, {summary.alerts} alerts, firing {summary.firing_s / 60:.1f} min"
            + (f"; {carried}" if carried else "")
        )
    print(
        f"total: {len(files) - failed} series, {total_rows} rows, {total_alerts} alerts"
        f" in {clock() - started:.1f}s" + (f"; {failed} file(s) failed" if failed else "")
    )
    return 1 if failed else 0
