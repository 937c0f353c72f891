"""Per-key request rate limits (token buckets), answered with 429 and ``Retry-After``."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

BURST_SECONDS = 2.0
"""A bucket holds this many seconds' worth of requests, so short bursts above the rate pass."""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by API key id; ``rate`` requests per second, bursts up to ``rate * BURST_SECONDS``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key_id: str, rate: float) -> float:
        """Take one token; return 0 when allowed, else the seconds until a token is available."""
        if rate <= 0:
            return 0.0
        capacity = max(1.0, rate * BURST_SECONDS)
        now = self._clock()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate


def retry_after_header(wait_s: float) -> str:
    """Retry-After takes whole seconds; never tell a client to retry immediately."""
    return str(max(1, math.ceil(wait_s)))
