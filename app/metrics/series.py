"""Time-bucketed sums of every measure: 1-second buckets for the recent past, 1-minute buckets for all time.

Buckets are sparse (only seconds/minutes that saw events exist), so memory
grows with the number of active buckets and dimensions, never with the
number of events. Second buckets older than a series' ``seconds_kept`` behind
the newest event are dropped (an hour for the total and channels, less for SKUs
and categories, of which a catalog has thousands); minute buckets are kept for
the whole campaign. A late event lands in the bucket of its own ``occurred_at``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from app.metrics.measures import ZERO_BUCKET, Amount

SECONDS_KEPT = 3600
"""Second buckets kept behind the newest event by the total and channel series."""
ITEM_SECONDS_KEPT = 600
"""Second buckets kept by SKU and category series. A busy catalog has thousands: 5,000 SKUs selling
every second would hold 18 million second buckets (~7 GB) for an hour, 3 million (~1.2 GB) for ten
minutes. A window reaching further back reads minute buckets there, a partly covered minute pro rata."""


class Series:
    """Per-measure totals plus sparse minute and second buckets for one dimension (total, a channel, a SKU…)."""

    __slots__ = ("totals", "minutes", "seconds", "seconds_kept")

    def __init__(self, seconds_kept: int = SECONDS_KEPT) -> None:
        self.totals: list[Amount] = list(ZERO_BUCKET)
        self.minutes: dict[int, list[Amount]] = {}
        self.seconds: dict[int, list[Amount]] = {}
        self.seconds_kept = seconds_kept

    def add(self, second: int, newest: int, contributions: list[tuple[int, Amount]]) -> None:
        """Add to the totals, the event's minute and (unless older than ``seconds_kept`` behind ``newest``,
        the newest second seen) its second."""
        minute_bucket = self.minutes.get(second // 60)
        if minute_bucket is None:
            minute_bucket = self.minutes[second // 60] = list(ZERO_BUCKET)
        second_bucket = None
        if second > newest - self.seconds_kept:
            second_bucket = self.seconds.get(second)
            if second_bucket is None:
                second_bucket = self.seconds[second] = list(ZERO_BUCKET)
        totals = self.totals
        for index, amount in contributions:
            totals[index] += amount  # type: ignore[operator]
            minute_bucket[index] += amount  # type: ignore[operator]
            if second_bucket is not None:
                second_bucket[index] += amount  # type: ignore[operator]

    def prune_seconds(self, newest: int) -> None:
        """Drop second buckets more than ``seconds_kept`` behind ``newest``."""
        oldest = newest - self.seconds_kept
        for second in [s for s in self.seconds if s < oldest]:
            del self.seconds[second]

    def window(self, index: int, start: int, end: int) -> Amount:
        """Sum of one measure over seconds [start, end): whole minutes from minute buckets, the edges by second."""
        total: Amount = ZERO_BUCKET[index]
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
        if last_full - first_full > len(minutes):  # a long range (a 10-day pre-heat): walk the buckets there are
            whole: Iterable[int] = sorted(m for m in minutes if first_full <= m < last_full)
        else:
            whole = range(first_full, last_full)
        for minute in whole:
            bucket = minutes.get(minute)
            if bucket is not None:
                total += bucket[index]  # type: ignore[operator]
        return total

    def between(self, index: int, start: int, end: int, newest: int) -> float:
        """Sum of one measure over seconds [start, end), ``newest`` being the newest second seen.

        Seconds after ``newest - seconds_kept`` are all in second buckets: that part is exact. Before it,
        minute buckets: exact for whole minutes, a partly covered minute pro rata. The minute holding the
        cut is split exactly: its kept seconds are subtracted from it, only the rest is pro rata.
        """
        cut = newest - self.seconds_kept + 1
        if start >= cut:
            return float(self.window(index, start, end))
        total = float(self.window(index, cut, end)) if end > cut else 0.0
        older_end = min(end, cut)
        for minute in range(start // 60, (older_end - 1) // 60 + 1):
            bucket = self.minutes.get(minute)
            if bucket is None:
                continue
            first, last = minute * 60, min(minute * 60 + 60, cut)
            older = float(bucket[index])
            if last < minute * 60 + 60:
                older -= float(self.window(index, cut, minute * 60 + 60))
            overlap = min(older_end, last) - max(start, first)
            if overlap > 0:
                total += older * overlap / (last - first)
        return total

    def points(self, index: int, step: int, start: int, end: int) -> Iterator[tuple[int, Amount]]:
        """(bucket start in epoch seconds, value) for every non-empty bucket in [start, end), in time order."""
        buckets = self.seconds if step == 1 else self.minutes
        for key in sorted(buckets):
            moment = key * step
            if start <= moment < end:
                yield moment, buckets[key][index]
