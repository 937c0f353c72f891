"""Token-bucket rate limits (per API key, and per client address for failed key checks), answered with 429
and ``Retry-After``."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

BURST_SECONDS = 2.0
"""A bucket holds this many seconds' worth of requests, so short bursts above the rate pass."""
MAX_BUCKETS = 100_000
"""Buckets kept at most; beyond it, those that have refilled (indistinguishable from new ones) are dropped first."""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    capacity: float
    rate: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now


class RateLimiter:
    """Token buckets keyed by a string (an API key id, a client address); ``rate`` per second, bursts up to
    ``rate * BURST_SECONDS``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_buckets: int = MAX_BUCKETS) -> None:
        self._clock = clock
        self._max_buckets = max_buckets
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str, rate: float) -> float:
        """Take one token; return 0 when allowed, else the seconds until a token is available."""
        if rate <= 0:
            return 0.0
        bucket = self._bucket(key, rate)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate

    def wait(self, key: str, rate: float) -> float:
        """The seconds until ``key`` has a token, taking none (0 when it has one now)."""
        if rate <= 0 or key not in self._buckets:
            return 0.0
        bucket = self._bucket(key, rate)
        return 0.0 if bucket.tokens >= 1.0 else (1.0 - bucket.tokens) / rate

    def _bucket(self, key: str, rate: float) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_buckets:
                self._prune(now)
            capacity = max(1.0, rate * BURST_SECONDS)
            bucket = self._buckets[key] = _Bucket(capacity, now, capacity, rate)
        bucket.capacity, bucket.rate = max(1.0, rate * BURST_SECONDS), rate
        bucket.refill(now)
        return bucket

    def _prune(self, now: float) -> None:
        """Drop the buckets that are full again; if none is, the oldest half (so memory stays bounded)."""
        for key, bucket in list(self._buckets.items()):
            bucket.refill(now)
            if bucket.tokens >= bucket.capacity:
                del self._buckets[key]
        if len(self._buckets) >= self._max_buckets:
            for key in list(self._buckets)[: self._max_buckets // 2]:
                del self._buckets[key]


def retry_after_header(wait_s: float) -> str:
    """Retry-After takes whole seconds; never tell a client to retry immediately."""
    return str(max(1, math.ceil(wait_s)))
