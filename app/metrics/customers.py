"""Who has bought before: a Bloom filter of every paying user the engine has seen, across campaigns.

New customers (新客) are paying users not seen paying before; the filter
keeps that test in bounded memory (8 MiB) with a false-positive rate under
1% up to about 7 million buyers. A false positive counts a new customer as
returning, never the reverse.
"""

from __future__ import annotations

import hashlib

BITS = 1 << 26
HASHES = 7


class KnownBuyers:
    __slots__ = ("_bits",)

    def __init__(self) -> None:
        self._bits = bytearray(BITS // 8)

    @staticmethod
    def _positions(user: str) -> list[int]:
        digest = hashlib.blake2b(user.encode(), digest_size=16).digest()
        first, second = int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:], "big") | 1
        return [(first + i * second) % BITS for i in range(HASHES)]

    def add(self, user: str) -> bool:
        """Record a buyer; True when the buyer was (probably) not known before."""
        bits = self._bits
        new = False
        for position in self._positions(user):
            byte, mask = position >> 3, 1 << (position & 7)
            if not bits[byte] & mask:
                new = True
                bits[byte] |= mask
        return new
