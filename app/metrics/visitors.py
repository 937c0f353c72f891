"""Distinct counts (UV, buyers): exact up to a threshold, then HyperLogLog with 0.41% standard error.

Small campaigns and tests get exact numbers; a 10-million-visitor burst costs
64 KiB per counter instead of a set of every id. With 2^16 registers the
standard error is 1.04/256 = 0.41%: an estimate is within 1% (2.4 standard
errors) of the true count about 98.5% of the time.
"""

from __future__ import annotations

import hashlib
import math

EXACT_LIMIT = 20_000
PRECISION = 16
REGISTERS = 1 << PRECISION
_ALPHA = 0.7213 / (1 + 1.079 / REGISTERS)


def hash64(value: str) -> int:
    """A stable 64-bit hash (the registers are checkpointed, so it must not change between processes)."""
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")


class DistinctCounter:
    """Counts distinct strings; switches from a set to HyperLogLog past ``EXACT_LIMIT``."""

    __slots__ = ("_exact", "_registers", "_inverse_sum", "_zeros")

    def __init__(self) -> None:
        self._exact: set[str] | None = set()
        self._registers: bytearray | None = None
        self._inverse_sum = float(REGISTERS)
        self._zeros = REGISTERS

    def add(self, value: str, hashed: int | None = None) -> None:
        """Count ``value``; ``hashed`` is its ``hash64`` when the caller has it (one hash for several counters)."""
        if self._exact is not None:
            self._exact.add(value)
            if len(self._exact) > EXACT_LIMIT:
                self._registers = bytearray(REGISTERS)
                for item in self._exact:
                    self._add_hashed(hash64(item))
                self._exact = None
            return
        self._add_hashed(hash64(value) if hashed is None else hashed)

    def _add_hashed(self, hashed: int) -> None:
        registers = self._registers
        assert registers is not None
        index = hashed >> (64 - PRECISION)
        rest = hashed & ((1 << (64 - PRECISION)) - 1)
        rank = (64 - PRECISION) - rest.bit_length() + 1
        old = registers[index]
        if rank > old:
            registers[index] = rank
            self._inverse_sum += 2.0**-rank - 2.0**-old
            if old == 0:
                self._zeros -= 1

    @property
    def exact(self) -> bool:
        return self._exact is not None

    def count(self) -> int:
        if self._exact is not None:
            return len(self._exact)
        estimate = _ALPHA * REGISTERS * REGISTERS / self._inverse_sum
        if estimate <= 2.5 * REGISTERS and self._zeros:
            estimate = REGISTERS * math.log(REGISTERS / self._zeros)
        return round(estimate)
