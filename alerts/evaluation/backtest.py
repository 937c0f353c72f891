"""Backtests: the live rule engine run over historical series from CSV text, one output row per input row.

The same ``Evaluator`` and ``Lifecycle`` that run live judge every row, so
what an operator tunes here is exactly what fires on the night. A CSV row is
one point of each of its columns: dynamic rules feed their detector each row
at its own timestamp (irregular spacing and gaps included); static and
correlation rules read their windows from a ``SeriesView`` whose clock stands
one row interval after the row. Every series starts from fresh state and
nothing looks ahead: a row is judged with the rows up to it. Finding,
opening and writing the files, and the progress lines, are the command's
(``app/cli/backtest.py``): this module is given streams.
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
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


def _number(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    value = float(text)
    return value if math.isfinite(value) else None


@dataclass
class Series:
    """One CSV: row times and, per column, the values (None where empty)."""

    timestamps: list[float]
    raw_timestamps: list[str]
    columns: dict[str, list[float | None]]

    @classmethod
    def read(cls, stream: TextIO, source: str) -> Series:
        reader = csv.DictReader(stream)
        if reader.fieldnames is None or "timestamp" not in reader.fieldnames:
            raise ValueError(f"{source}: needs a header row with a timestamp column")
        names = [n for n in reader.fieldnames if n != "timestamp"]
        timestamps: list[float] = []
        raw: list[str] = []
        columns: dict[str, list[float | None]] = {n: [] for n in names}
        for line, row in enumerate(reader, start=2):
            try:
                moment = _parse_time(row["timestamp"])
                values = {n: _number(row.get(n)) for n in names}
            except ValueError as exc:
                raise ValueError(f"{source}:{line}: {exc}") from None
            if timestamps and moment < timestamps[-1]:
                raise ValueError(f"{source}:{line}: timestamps must not go backwards")
            timestamps.append(moment)
            raw.append(row["timestamp"])
            for n in names:
                columns[n].append(values[n])
        return cls(timestamps, raw, columns)

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


def run_series(
    series: Series, rules: list[AnyRule], out: TextIO, progress: Callable[[int], None] | None = None
) -> Summary:
    """Evaluate every row in order and write ``timestamp,value,score,severity,firing`` for each.

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
                f"{min(1.0, score):.4f}",
                severity,
                int(bool(active)),
            )
        )
        if progress is not None and (index + 1) % PROGRESS_EVERY_ROWS == 0:
            progress(index + 1)
    if firing_since is not None:
        firing_s += series.timestamps[-1] - firing_since
    return Summary(len(series.timestamps), alerts, firing_s)
