"""Inhibition: a firing alert mutes others it explains (as Alertmanager's inhibit_rules).

An emergency on a SKU mutes the warnings and reminders on the same SKU; a
payment outage mutes the conversion drop it causes. Rule packs add their
own under ``inhibit:``.
"""

from __future__ import annotations

import msgspec

from alerts.silences import Matcher, matches_all


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
    InhibitRule(source=["severity=emergency", "sku=~.+"], target=["severity=~warning|reminder"], equal=["campaign", "sku"]),
)


def inhibiting(
    target_id: str,
    target: dict[str, str],
    firing: list[tuple[str, dict[str, str]]],
    rules: tuple[InhibitRule, ...] | list[InhibitRule],
) -> list[str]:
    """Ids of firing alerts that inhibit the alert ``target_id`` (labels ``target``); ``firing`` is (id, labels)."""
    found: list[str] = []
    for rule in rules:
        source_matchers, target_matchers = rule.parsed()
        if not matches_all(target_matchers, target):
            continue
        for alert_id, labels in firing:
            if alert_id == target_id or not matches_all(source_matchers, labels):
                continue
            if all(labels.get(name) == target.get(name) for name in rule.equal):
                found.append(alert_id)
    return found


def inhibited(firing: list[tuple[str, dict[str, str]]], rules: tuple[InhibitRule, ...] | list[InhibitRule]) -> set[str]:
    """Ids of the ``firing`` alerts (id, labels) that some other firing alert inhibits.

    The same answer as ``inhibiting`` for each alert, in one pass per rule
    (sources indexed by their ``equal`` labels), so a night with hundreds of
    firing alerts costs linear time.
    """
    muted: set[str] = set()
    for rule in rules:
        source_matchers, target_matchers = rule.parsed()
        sources: dict[tuple[str | None, ...], set[str]] = {}
        for alert_id, labels in firing:
            if matches_all(source_matchers, labels):
                sources.setdefault(tuple(labels.get(name) for name in rule.equal), set()).add(alert_id)
        if not sources:
            continue
        for alert_id, labels in firing:
            if matches_all(target_matchers, labels) and sources.get(tuple(labels.get(name) for name in rule.equal), set()) - {alert_id}:
                muted.add(alert_id)
    return muted
