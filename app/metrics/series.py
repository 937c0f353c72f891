"""Time-bucketed sums of every measure: 1-second buckets for the recent past, 1-minute buckets for all time.

Buckets are sparse (only seconds/minutes that saw events exist), so memory
grows with the number of active buckets and dimensions, never with the
number of events. Second buckets older than ``SECONDS_KEPT`` behind the
newest event are dropped; minute buckets are kept for the whole campaign.
A late event lands in the bucket of its own ``occurred_at``.
"""

from __future__ import annotations

from typing import Iterator

from app.metrics.measures import ZERO_BUCKET

SECONDS_KEPT = 3600


class Series:
    """Per-measure totals plus sparse minute and second buckets for one dimension (total, a channel, a SKU…)."""

    __slots__ = ("totals", "minutes", "seconds")

    def __init__(self) -> None:
        self.totals: list[object] = list(ZERO_BUCKET)
        self.minutes: dict[int, list[object]] = {}
        self.seconds: dict[int, list[object]] = {}

    def add(self, second: int, keep_second: bool, contributions: list[tuple[int, object]]) -> None:
        minute_bucket = self.minutes.get(second // 60)
        if minute_bucket is None:
            minute_bucket = self.minutes[second // 60] = list(ZERO_BUCKET)
        second_bucket = None
        if keep_second:
            second_bucket = self.seconds.get(second)
            if second_bucket is None:
                second_bucket = self.seconds[second] = list(ZERO_BUCKET)
        totals = self.totals
        for index, amount in contributions:
            totals[index] += amount  # type: ignore[operator]
            minute_bucket[index] += amount  # type: ignore[operator]
            if second_bucket is not None:
                second_bucket[index] += amount  # type: ignore[operator]

    def prune_seconds(self, oldest: int) -> None:
        for second in [s for s in self.seconds if s < oldest]:
            del self.seconds[second]

    def window(self, index: int, start: int, end: int) -> object:
        """Sum of one measure over seconds [start, end): whole minutes from minute buckets, the edges by second."""
        total: object = ZERO_BUCKET[index]
        seconds, minutes = self.seconds, self.minutes
        first_full, last_full = -(-start // 60), end // 60
        if last_full - first_full < 2:
            edges: range | tuple[int, ...] = range(start, end)
            first_full = last_full
        else:
            edges = (*range(start, first_full * 60), *range(last_full * 60, end))
        for second in edges:
            bucket = seconds.get(second)
            if bucket is not None:
                total += bucket[index]  # type: ignore[operator]
        for minute in range(first_full, last_full):
            bucket = minutes.get(minute)
            if bucket is not None:
                total += bucket[index]  # type: ignore[operator]
        return total

    def between(self, index: int, start: int, end: int, oldest_second: int) -> float:
        """Sum of one measure over seconds [start, end): exact from second buckets when they still cover
        ``start``; before that from minute buckets, a partly covered minute counted pro rata."""
        if start >= oldest_second:
            return float(self.window(index, start, end))  # type: ignore[arg-type]
        total = 0.0
        for minute in range(start // 60, (end - 1) // 60 + 1):
            bucket = self.minutes.get(minute)
            if bucket is not None:
                overlap = min(end, minute * 60 + 60) - max(start, minute * 60)
                total += float(bucket[index]) * overlap / 60  # type: ignore[arg-type]
        return total

    def points(self, index: int, step: int, start: int, end: int) -> Iterator[tuple[int, object]]:
        """(bucket start in epoch seconds, value) for every non-empty bucket in [start, end), in time order."""
        buckets = self.seconds if step == 1 else self.minutes
        for key in sorted(buckets):
            moment = key * step
            if start <= moment < end:
                yield moment, buckets[key][index]
