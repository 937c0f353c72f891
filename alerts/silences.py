"""Silences: planned quiet for alerts whose labels match, between a start and an end, with a reason.

Matchers follow Alertmanager: ``name=value``, ``name!=value``, ``name=~regex``,
``name!~regex`` (regexes are anchored). A silenced alert still fires and is
recorded; it is only not announced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import msgspec

MatchOp = Literal["=", "!=", "=~", "!~"]
_MATCHER = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>.*?)\s*$")


class Matcher(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.value!r}: {exc}") from None

    @classmethod
    def parse(cls, text: str) -> "Matcher":
        """``sku=SKU-1001``, ``rule=~stock_.*``, ``channel!=tmall``."""
        match = _MATCHER.match(text)
        if match is None:
            raise ValueError(f"not a matcher: {text!r} (use name=value, name!=value, name=~regex or name!~regex)")
        value = match["value"]
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        return cls(match["name"], match["op"], value)  # type: ignore[arg-type]

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


def matches_all(matchers: list[Matcher] | tuple[Matcher, ...], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    reason: str
    created_by: str

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at


def silencing(labels: dict[str, str], silences: list[Silence], now: float) -> list[str]:
    """Ids of the active silences that match ``labels`` (which include ``rule`` and ``severity``)."""
    return [s.id for s in silences if s.active(now) and matches_all(s.matchers, labels)]
