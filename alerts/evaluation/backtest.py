"""Backtests: the live rule engine run over historical series from CSV text, one output row per input row.

The same ``Evaluator`` and ``Lifecycle`` that run live judge every row, so
what an operator tunes here is exactly what fires on the night. A CSV row is
one point of each of its columns: dynamic rules feed their detector each row
at its own timestamp (irregular spacing and gaps included); static and
correlation rules read their windows from a ``SeriesView`` whose clock stands
one row interval after the row. Every series starts from fresh state and
nothing looks ahead: a row is judged with the rows up to it. Real exports are
taken as they come: a timestamp that repeats or steps back (a clock going back
an hour, rows exported twice) is a late row judged at the latest time seen, so
the detector never sees time go backwards; empty, NaN and unreadable cells are
missing values; gaps are counted. All of it is reported in ``Series.quality``
(warnings name file and line), never fatal. Finding,
opening and writing the files, and the progress lines, are the command's
(``app/cli/backtest.py``): this module is given streams.
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import TextIO

from alerts.evaluation.detectors import DEFAULT_MIN_HISTORY as DEFAULT_WARMUP_POINTS
from alerts.evaluation.evaluate import Evaluator, metric_is_sum
from alerts.evaluation.lifecycle import Lifecycle
from alerts.evaluation.rules import AnyRule, DynamicRule, Text
from alerts.evaluation.severity import most_severe

SERIES = "series"
DEFAULT_COLUMN = "value"
PROGRESS_EVERY_ROWS = 10_000
"""How often (in rows) a long file reports its progress to ``run_series``'s caller."""
OUTPUT_COLUMNS = ("timestamp", "value", "score", "severity", "firing")
STEP_SAMPLE_GAPS = 100
"""The row interval (the window a static rule's row closes) is the median of at most this many first gaps."""
EPOCH_MILLISECONDS_FROM = 1e11
"""A numeric timestamp this large is in milliseconds (1e11 s is the year 5138; 1e11 ms is 1973)."""
DEFAULT_STEP_S = 60.0
"""The row interval assumed before a series has two rows."""
GAP_INTERVALS = 3.0
"""A gap (reported, not fatal) is a stretch of more than this many row intervals without a row."""
MAX_WARNINGS = 20
"""Warnings kept per file; the rest are counted in one last warning."""


def default_rules() -> list[AnyRule]:
    """The default dynamic rule on the ``value`` column: both directions, default sensitivity and warm-up.

    Its window is nominal: in a backtest each row is one point, so the warm-up is
    ``DEFAULT_WARMUP_POINTS`` rows whatever the spacing (minutes or hours).
    """
    return [
        DynamicRule(
            name="value_anomaly",
            summary=Text(en="value {value} outside {lower}–{upper}", zh="数值 {value} 超出 {lower}–{upper}"),
            runbook=Text(en="Investigate the series around this time.", zh="排查该时段的数据。"),
            metric=DEFAULT_COLUMN,
            window="1m",
            min_history=f"{DEFAULT_WARMUP_POINTS}m",
        )
    ]


def _parse_time(text: str) -> float:
    """ISO 8601 (UTC when it has no offset); also a plain number of epoch seconds, or milliseconds when it is
    that large, as many exported series carry."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if not math.isfinite(number):
        raise ValueError(f"timestamp {text!r} is not a time")
    return number / 1000 if abs(number) >= EPOCH_MILLISECONDS_FROM else number


class _Cells:
    """Counts of the value cells that hold no number, by kind."""

    def __init__(self) -> None:
        self.empty = self.not_finite = self.unreadable = 0

    def number(self, text: str | None) -> float | None:
        """The cell's value, or None (counted) when it is empty, NaN or ±inf, or no number at all."""
        if text is None or not text.strip():
            self.empty += 1
            return None
        try:
            value = float(text)
        except ValueError:
            self.unreadable += 1
            return None
        if not math.isfinite(value):
            self.not_finite += 1
            return None
        return value


@dataclass
class Quality:
    """What a real export carried besides clean rows: counted and reported, never fatal."""

    late_rows: int = 0
    """Rows whose timestamp repeats or steps back: judged at the latest time seen (see ``Series.read``)."""
    empty_cells: int = 0
    not_finite_cells: int = 0
    """NaN, inf and -inf: judged as missing, like an empty cell."""
    unreadable_cells: int = 0
    """Text that is no number: judged as missing."""
    skipped_rows: int = 0
    """Rows without a readable timestamp: not judged and not written."""
    gaps: int = 0
    """Stretches of more than GAP_INTERVALS row intervals without a row."""
    longest_gap_s: float = 0.0
    longest_gap_line: int = 0
    """The line of the row after the longest gap."""
    warnings: list[str] = field(default_factory=list)
    """Each names the file and line; at most MAX_WARNINGS, then one that says how many more there were."""

    def describe(self) -> str:
        """The counts that are not zero, for the per-file summary line ('' when the file was clean)."""
        parts = [
            f"{count} {label}"
            for count, label in (
                (self.late_rows, "late rows (time repeated or stepped back)"),
                (self.empty_cells, "empty cells"),
                (self.not_finite_cells, "NaN/inf cells"),
                (self.unreadable_cells, "unreadable cells"),
                (self.skipped_rows, "rows skipped (no readable timestamp)"),
            )
            if count
        ]
        if self.gaps:
            longest = timedelta(seconds=round(self.longest_gap_s))
            parts.append(f"{self.gaps} gaps (longest {longest} before line {self.longest_gap_line})")
        return ", ".join(parts)


def _warn(quality: Quality, message: str, suppressed: list[int]) -> None:
    if len(quality.warnings) < MAX_WARNINGS:
        quality.warnings.append(message)
    else:
        suppressed[0] += 1


def _late_warning(source: str, run: list[tuple[int, str]], latest: tuple[int, str, float], back_s: float) -> str:
    """One warning for a run of consecutive late rows: where it starts, how far back, how many rows."""
    (first, raw), (last, _) = run[0], run[-1]
    line, latest_raw, _ = latest
    back = timedelta(seconds=round(back_s))
    how = f"repeats line {line}'s" if back_s == 0 else f"steps back {back} from line {line}'s"
    rows = f"{len(run)} rows (to line {last})" if len(run) > 1 else "the row"
    return (
        f"{source}:{first}: timestamp {raw.strip()!r} {how} {latest_raw.strip()!r}; {rows} judged as late rows"
        " at the latest time seen"
    )


def _count_gaps(timestamps: list[float], lines: list[int], quality: Quality) -> None:
    """Count the stretches longer than GAP_INTERVALS row intervals (the median spacing) without a row."""
    spacing = [b - a for a, b in zip(timestamps, timestamps[1:], strict=False) if b > a]
    if not spacing:
        return
    limit = GAP_INTERVALS * median(spacing)
    for index, (before, after) in enumerate(zip(timestamps, timestamps[1:], strict=False), start=1):
        if after - before > limit:
            quality.gaps += 1
            if after - before > quality.longest_gap_s:
                quality.longest_gap_s, quality.longest_gap_line = after - before, lines[index]


@dataclass
class Series:
    """One CSV: row times and, per column, the values (None where empty or no number), and what the file carried.

    ``timestamps`` never go backwards: a row whose own time repeats or steps back (a clock that went
    back an hour, rows exported twice) is a late row, kept at the latest time seen so far, so the
    detector judges it against the current model and learns from it there, and a window reads it as part
    of the latest one. ``raw_timestamps`` keep each row's own text for the output.
    """

    timestamps: list[float]
    raw_timestamps: list[str]
    columns: dict[str, list[float | None]]
    quality: Quality = field(default_factory=Quality)

    @classmethod
    def read(cls, stream: TextIO, source: str) -> Series:
        """Parse a CSV export as it comes; refuses (ValueError naming ``source:line``) only a file without a header
        row naming a timestamp column, or one the CSV reader cannot get through."""
        reader = csv.reader(stream)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise ValueError(f"{source}:{reader.line_num}: {exc}") from None
        names = [n.strip() for n in header] if header else []
        if "timestamp" not in (n.lower() for n in names):
            found = f" (found: {', '.join(repr(n) for n in names)})" if names else " (the file is empty)"
            raise ValueError(f"{source}:1: needs a header row with a timestamp column{found}")
        at = next(i for i, n in enumerate(names) if n.lower() == "timestamp")
        value_at = {n: i for i, n in enumerate(names) if i != at and n}
        timestamps: list[float] = []
        raw: list[str] = []
        lines: list[int] = []
        columns: dict[str, list[float | None]] = {n: [] for n in value_at}
        quality, cells, suppressed = Quality(), _Cells(), [0]
        latest: tuple[int, str, float] | None = None
        late: list[tuple[int, str]] = []
        back_s = 0.0
        try:
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                text = row[at] if at < len(row) else ""
                try:
                    moment = _parse_time(text)
                except ValueError as exc:
                    quality.skipped_rows += 1
                    _warn(quality, f"{source}:{line}: skipped, no readable timestamp ({exc})", suppressed)
                    continue
                if latest is not None and moment <= latest[2]:
                    if not late:
                        back_s = latest[2] - moment
                    late.append((line, text))
                    moment = latest[2]
                else:
                    if late and latest is not None:
                        _warn(quality, _late_warning(source, late, latest, back_s), suppressed)
                        quality.late_rows += len(late)
                        late = []
                    latest = (line, text, moment)
                timestamps.append(moment)
                raw.append(text)
                lines.append(line)
                for n, i in value_at.items():
                    columns[n].append(cells.number(row[i] if i < len(row) else None))
        except csv.Error as exc:
            raise ValueError(f"{source}:{reader.line_num}: {exc}") from None
        if late and latest is not None:
            _warn(quality, _late_warning(source, late, latest, back_s), suppressed)
            quality.late_rows += len(late)
        if suppressed[0]:
            quality.warnings.append(f"{source}: {suppressed[0]} more warnings like these")
        quality.empty_cells, quality.not_finite_cells, quality.unreadable_cells = (
            cells.empty,
            cells.not_finite,
            cells.unreadable,
        )
        _count_gaps(timestamps, lines, quality)
        return cls(timestamps, raw, columns, quality)

    def steps(self) -> Iterator[float]:
        """Per row, the row interval known by then: the median of the gaps so far (at most STEP_SAMPLE_GAPS)."""
        gaps: list[float] = []
        step = DEFAULT_STEP_S
        for index, moment in enumerate(self.timestamps):
            if index and len(gaps) < STEP_SAMPLE_GAPS:
                gap = moment - self.timestamps[index - 1]
                if gap > 0:
                    gaps.append(gap)
                    step = median(gaps)
            yield step


class SeriesView:
    """A ``MetricView`` over one CSV: a metric over [start, end) sums (or averages) the rows inside it."""

    def __init__(self, series: Series) -> None:
        self.series = series
        self.now = 0.0
        self.visible = 0
        """Rows judged so far, the current one included: a window never reads past them."""
        self._prefix: dict[str, tuple[list[float], list[int]]] = {}
        for name, values in series.columns.items():
            sums, counts, total, count = [0.0], [0], 0.0, 0
            for value in values:
                if value is not None:
                    total += value
                    count += 1
                sums.append(total)
                counts.append(count)
            self._prefix[name] = (sums, counts)

    def campaigns(self) -> list[str]:
        return [SERIES]

    def labels(self, campaign: str, by: str) -> list[str]:
        return []

    def value(
        self, campaign: str, metric: str, start: float, end: float, by: str | None, label: str | None
    ) -> float | None:
        if metric not in self._prefix:
            return None
        end = min(end, self.now)
        lo = bisect.bisect_left(self.series.timestamps, start, 0, self.visible)
        hi = bisect.bisect_left(self.series.timestamps, end, 0, self.visible)
        sums, counts = self._prefix[metric]
        count = counts[hi] - counts[lo]
        if count == 0:
            return None
        total = sums[hi] - sums[lo]
        return total if metric_is_sum(metric) else total / count

    def baseline(
        self, campaign: str, metric: str, start: float, end: float, by: str | None, label: str | None
    ) -> float | None:
        return None

    def growth(self, campaign: str, metric: str) -> float | None:
        return None

    def data_since(self, campaign: str) -> float | None:
        return self.series.timestamps[0] if self.series.timestamps else None

    def attribute(self, campaign: str, sku: str, name: str) -> float | None:
        return None


@dataclass
class Summary:
    rows: int
    alerts: int
    firing_s: float
    quality: Quality = field(default_factory=Quality)
    """What the file carried (late rows, empty and NaN cells, gaps) and its warnings, each naming file and line."""


def run_series(
    series: Series, rules: list[AnyRule], out: TextIO, progress: Callable[[int], None] | None = None
) -> Summary:
    """Evaluate every row in order and write ``timestamp,value,score,severity,firing`` for each.

    The score is written in full (``repr``), so distinct scores stay distinct in the output.

    ``progress`` is called with the number of rows done every PROGRESS_EVERY_ROWS rows.
    """
    dynamic = [r for r in rules if isinstance(r, DynamicRule) and r.by is None and r.campaign in (None, SERIES)]
    windowed = [r for r in rules if not isinstance(r, DynamicRule)]
    evaluator, lifecycle, view = Evaluator(windowed), Lifecycle(), SeriesView(series)
    points = Evaluator(dynamic)
    for_s = {**evaluator.for_seconds(), **points.for_seconds()}
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(OUTPUT_COLUMNS)
    shown_column = DEFAULT_COLUMN if DEFAULT_COLUMN in series.columns else next(iter(series.columns), None)
    shown = series.columns[shown_column] if shown_column is not None else []
    alerts, firing_since, firing_s = 0, None, 0.0
    for index, (moment, step) in enumerate(zip(series.timestamps, series.steps(), strict=False)):
        view.now, view.visible = moment + step, index + 1  # the row's window is complete; no later row is visible
        observations = evaluator.evaluate(view) if windowed else []
        for rule in dynamic:
            value = series.columns[rule.metric][index] if rule.metric in series.columns else None
            if value is not None:
                observations.append(points.observe_point(rule, view, SERIES, moment, value))
        transitions = lifecycle.observe(observations, moment, for_s)
        alerts += sum(1 for t in transitions if t.kind == "firing")
        score = 0.0
        for observation in observations:
            score = max(score, observation.values.get("score", 1.0 if observation.triggered else 0.0) or 0.0)
        active = [a for a in lifecycle.alerts.values() if a.status == "firing"]
        pending = [a for a in lifecycle.alerts.values() if a.status == "pending"]
        flagged = active or pending
        severity = most_severe(a.severity for a in flagged) if flagged else ""
        if active and firing_since is None:
            firing_since = moment
        elif not active and firing_since is not None:
            firing_s += moment - firing_since
            firing_since = None
        value = shown[index] if shown else None
        writer.writerow(
            (
                series.raw_timestamps[index],
                "" if value is None else repr(value),
                repr(min(1.0, score)),
                severity,
                int(bool(active)),
            )
        )
        if progress is not None and (index + 1) % PROGRESS_EVERY_ROWS == 0:
            progress(index + 1)
    if firing_since is not None:
        firing_s += series.timestamps[-1] - firing_since
    return Summary(len(series.timestamps), alerts, firing_s, series.quality)
