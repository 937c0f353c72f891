"""Inhibition: a firing alert mutes others it explains (as Alertmanager's inhibit_rules).

An emergency on a SKU mutes the warnings and reminders on the same SKU; a
payment outage mutes the conversion drop it causes. Rule packs add their
own under ``inhibit:``.
"""

from __future__ import annotations

import msgspec

from alerts.evaluation.silences import Matcher, matches_all


class InhibitRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    source: list[str]
    """Matchers a firing alert must meet to inhibit (e.g. ``severity=emergency``)."""
    target: list[str]
    """Matchers of the alerts it mutes."""
    equal: list[str] = []
    """Labels that must have the same value on both (e.g. ``campaign``, ``sku``)."""

    def __post_init__(self) -> None:
        for text in (*self.source, *self.target):
            Matcher.parse(text)

    def parsed(self) -> tuple[tuple[Matcher, ...], tuple[Matcher, ...]]:
        return tuple(map(Matcher.parse, self.source)), tuple(map(Matcher.parse, self.target))


DEFAULT_INHIBIT_RULES: tuple[InhibitRule, ...] = (
    InhibitRule(
        source=["severity=emergency", "sku=~.+"], target=["severity=~warning|reminder"], equal=["campaign", "sku"]
    ),
)


def inhibitors(
    firing: list[tuple[str, dict[str, str]]], rules: tuple[InhibitRule, ...] | list[InhibitRule]
) -> dict[str, list[str]]:
    """For each firing alert (id, labels) that others inhibit, the ids of those others.

    One pass per rule, with the sources indexed by their ``equal`` labels, so a
    night with hundreds of firing alerts costs linear time, not quadratic.
    """
    found: dict[str, list[str]] = {}
    for rule in rules:
        source_matchers, target_matchers = rule.parsed()
        sources: dict[tuple[str | None, ...], list[str]] = {}
        for alert_id, labels in firing:
            if matches_all(source_matchers, labels):
                sources.setdefault(tuple(labels.get(name) for name in rule.equal), []).append(alert_id)
        if not sources:
            continue
        for alert_id, labels in firing:
            if not matches_all(target_matchers, labels):
                continue
            others = [s for s in sources.get(tuple(labels.get(name) for name in rule.equal), []) if s != alert_id]
            if others:
                found.setdefault(alert_id, []).extend(others)
    return found
