"""Silences: planned quiet for alerts whose labels match, between a start and an end, with a reason.

A matcher is structured: a label ``name``, an operator (``=``, ``!=``, ``=~``,
``!~``, as in Alertmanager) and a ``value``. It is stored and exchanged in
that form, so a label value that happens to read like an operator (a SKU named
``~.*``) stays a plain value. The text form ``name=value``, ``name=~regex`` is
an explicit syntax for people (CLI, API, rule files), parsed once where it
enters. Input limits (value and regex length) apply where matchers enter
(``Matcher.checked``), not where stored ones are read. Regexes are anchored
and compiled once. A silenced alert still fires and is recorded; it is only
not announced.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import msgspec

MatchOp = Literal["=", "!=", "=~", "!~"]
MAX_VALUE_LENGTH = 1024
"""A label value longer than any the ingest API accepts matches nothing anyway."""
MAX_REGEX_LENGTH = 256
"""Long enough for an alternation of SKUs; short enough that compiling and matching stay cheap."""
COMPILED_PATTERNS = 1024
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_MATCHER = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>.*?)\s*$")
_NAME = re.compile(NAME_PATTERN)


@lru_cache(maxsize=COMPILED_PATTERNS)
def anchored(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled to match a whole label value, once per distinct pattern."""
    return re.compile(f"(?:{pattern})\\Z")


class Matcher(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        """What any matcher must be to be applied at all; the input limits are ``checked``'s, not checked here,
        so a silence stored before a limit existed (or under a higher one) is still read and still applies."""
        if not _NAME.match(self.name):
            raise ValueError(f"invalid label name {self.name!r} (letters, digits and _, not starting with a digit)")
        if self.op in ("=~", "!~"):
            try:
                anchored(self.value)
            except (
                re.error,
                RecursionError,
                OverflowError,
            ) as exc:  # nesting or a repeat count past the compiler's limits
                raise ValueError(f"invalid regex {self.value[:MAX_REGEX_LENGTH]!r}: {exc}") from None

    @classmethod
    def checked(cls, name: str, op: MatchOp, value: str) -> Matcher:
        """A matcher entered by a person (API, CLI, rule files), within the input limits."""
        if op in ("=~", "!~"):
            if len(value) > MAX_REGEX_LENGTH:
                raise ValueError(f"regex for {name} is {len(value)} characters; at most {MAX_REGEX_LENGTH}")
        elif len(value) > MAX_VALUE_LENGTH:
            raise ValueError(f"value for {name} is {len(value)} characters; at most {MAX_VALUE_LENGTH}")
        return cls(name, op, value)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """The operator-typed text form: ``sku=SKU-1001``, ``rule=~stock_.*``, ``channel!=tmall``; a value in
        double quotes (JSON string syntax) is taken literally, e.g. ``sku="~.*"`` is the SKU named ``~.*``."""
        match = _MATCHER.match(text)
        if match is None:
            raise ValueError(f"not a matcher: {text!r} (use name=value, name!=value, name=~regex or name!~regex)")
        value = match["value"]
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except ValueError:
                value = value[1:-1]
        return cls.checked(match["name"], match["op"], value)  # type: ignore[arg-type]

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = anchored(self.value).match(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        """The text form; a value that would read differently unquoted is quoted."""
        value = self.value
        literal = self.op in ("=", "!=") and (not value or value[0] in "~=" or value != value.strip())
        if literal or value.startswith('"'):
            value = json.dumps(value, ensure_ascii=False)
        return f"{self.name}{self.op}{value}"


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
