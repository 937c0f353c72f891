"""A bounded cache whose entries count as fresh for a fixed time: what key and session checks remember between
database lookups (known credentials, and unknown ones, in caches of their own so a flood of unknown ones never
evicts a known one)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TimedCache(Generic[K, V]):
    """At most ``entries`` values, each fresh for ``ttl_s`` seconds after it was put; the oldest put goes first
    when full. Times are passed in (a monotonic clock), so callers decide what "now" is."""

    def __init__(self, ttl_s: float, entries: int) -> None:
        self._ttl_s = ttl_s
        self._entries = entries
        self._values: dict[K, tuple[float, V]] = {}

    def fresh(self, key: K, now: float) -> V | None:
        """The value put for ``key`` less than ``ttl_s`` ago, or None."""
        cached = self._values.get(key)
        return cached[1] if cached is not None and now - cached[0] < self._ttl_s else None

    def stale(self, key: K, now: float, grace_s: float) -> V | None:
        """The value put for ``key`` less than ``ttl_s + grace_s`` ago (better than nothing while the database is
        away, but not for ever: a key revoked meanwhile must stop working), or None."""
        cached = self._values.get(key)
        return cached[1] if cached is not None and now - cached[0] < self._ttl_s + grace_s else None

    def put(self, key: K, value: V, now: float) -> None:
        self._values.pop(key, None)
        while len(self._values) >= self._entries:
            del self._values[next(iter(self._values))]
        self._values[key] = (now, value)

    def discard(self, key: K) -> None:
        self._values.pop(key, None)
