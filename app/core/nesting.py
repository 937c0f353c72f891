"""How deeply JSON nests arrays and objects, measured without recursion.

Decoders recurse once per level (msgspec and the standard library stop near
Python's recursion limit with a ``RecursionError``), so a body nested a
thousand levels deep must be refused as the client's error, naming the
nesting, before or instead of crashing the request.
"""

from __future__ import annotations

import re

MAX_PROPS_DEPTH = 64
"""Levels of arrays and objects an event's ``props`` may nest (the object itself is level 1)."""
MAX_BODY_DEPTH = 64
"""Levels a JSON body of an operator endpoint (silences, acknowledgements, campaigns) may nest."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in ``data``; brackets inside strings do not count."""
    deepest = level = 0
    for byte in _STRING.sub(b"", data).translate(None, _NOT_BRACKETS):
        if byte in b"[{":
            level += 1
            deepest = max(deepest, level)
        else:
            level -= 1
    return deepest


def too_deep(data: bytes, limit: int) -> int | None:
    """The depth of ``data`` when it exceeds ``limit``, else None; cheap when few brackets appear at all."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return None
    found = depth(data)
    return found if found > limit else None
