"""How bad an alert is: one ordered enum for rules, the lifecycle, dispatch, the API, the wall and SQL.

A member is its name as text (``Severity.WARNING == "warning"``): that is how a severity is written in rule
files, stored, labelled and sent. Its order is the members' order, least severe first; compare by ``rank``
(``<`` on members would compare the text).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Severity(StrEnum):
    REMINDER = "reminder"
    WARNING = "warning"
    EMERGENCY = "emergency"

    @property
    def rank(self) -> int:
        """0 for the least severe, growing with severity."""
        return _RANK[self]

    @property
    def zh(self) -> str:
        return _ZH[self]

    @property
    def en(self) -> str:
        return self.value.capitalize()


_RANK: dict[str, int] = {severity: index for index, severity in enumerate(Severity)}
_ZH: dict[str, str] = {Severity.REMINDER: "提醒", Severity.WARNING: "警告", Severity.EMERGENCY: "紧急"}
UNKNOWN_RANK = -1
"""The rank of text that names no severity: below every severity."""
MOST_SEVERE_FIRST: tuple[Severity, ...] = tuple(reversed(Severity))


def rank(name: str) -> int:
    """The rank of a severity given as text (as stored or labelled); ``UNKNOWN_RANK`` for other text."""
    return _RANK.get(name, UNKNOWN_RANK)


def most_severe(names: Iterable[str]) -> str:
    """The most severe of ``names`` (the first of equals); ``names`` must not be empty."""
    return max(names, key=rank)
