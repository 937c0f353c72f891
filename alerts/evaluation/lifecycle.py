"""Alert lifecycle: pending → firing → resolved, one alert per fingerprint, severity that rises and falls.

Pure decision logic with the clock passed in (as Prometheus' rule manager
and Alertmanager keep theirs): ``Lifecycle.observe`` takes what the rules
found at one evaluation and returns the transitions to persist and announce.

- A tier *triggers* when its condition holds and *recovers* when the value is
  past its recovery threshold (hysteresis); in between it keeps its state, so
  a value hovering at the limit does not flap.
- The alert's severity is its most severe active tier. It fires once any
  tier has been active for the rule's ``for``; it resolves when no tier is.
- Flapping: an alert that fired and resolved ``FLAP_TRANSITIONS`` times within
  ``FLAP_WINDOW_S`` is marked flapping; it then resolves only after staying
  recovered for ``FLAP_STABLE_S``, and its transitions carry ``flapping`` so
  delivery can hold back repeats. A resolved alert's flips are remembered for
  ``FLAP_WINDOW_S`` (at most ``MAX_RECENT_RESOLVED`` of them) in case it fires again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from alerts.evaluation.severity import Severity, most_severe, rank

log = logging.getLogger(__name__)

FLAP_WINDOW_S = 900.0
FLAP_TRANSITIONS = 4
FLAP_STABLE_S = 60.0
"""A flapping alert resolves once it has stayed recovered this long: long enough that a value hovering at the limit
does not flip it again, short enough that it does not outlive its incident by more than a few minutes."""
MAX_RECENT_RESOLVED = 10_000
"""Resolved alerts whose flips are remembered for flap detection. Flips older than ``FLAP_WINDOW_S`` are
forgotten anyway; past this many within the window the longest resolved is forgotten too (and logged), so a
flood of one-off alerts cannot grow memory without bound."""

TransitionKind = Literal["firing", "escalated", "deescalated", "resolved"]


@functools.lru_cache(maxsize=100_000)
def _fingerprint(rule: str, labels: tuple[tuple[str, str], ...]) -> str:
    text = json.dumps([rule, labels], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(rule: str, labels: dict[str, str]) -> str:
    """Stable identity of an alert: the rule plus its labels (campaign, sku, channel…)."""
    return _fingerprint(rule, tuple(sorted(labels.items())))


META_VALUES = frozenset({"guarded", "score"})
"""Values that say how a rule was judged, not what it read."""


def has_reading(values: dict[str, Any]) -> bool:
    """Whether an observation's values hold a number read from the metrics (not only the rule's state)."""
    return any(
        isinstance(v, (int, float)) and not isinstance(v, bool) and k not in META_VALUES and k != "threshold"
        for k, v in values.items()
    )


@dataclass(frozen=True)
class Observation:
    """What one rule found for one label set at one evaluation."""

    rule: str
    labels: dict[str, str]
    triggered: frozenset[str]
    """Tiers whose condition holds now."""
    recovered: frozenset[str]
    """Tiers whose value is past the recovery threshold (the others keep their state)."""
    values: dict[str, Any] = field(default_factory=dict)
    """The numbers behind the decision: value, threshold or expected band, per-signal values."""
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fingerprint", fingerprint(self.rule, self.labels))


@dataclass
class Alert:
    """The state of one fingerprint. ``id`` names this occurrence: a new one starts after each resolution."""

    id: str
    fingerprint: str
    rule: str
    labels: dict[str, str]
    status: Literal["pending", "firing", "resolved"]
    severity: Severity
    active: set[str]
    pending_since: float
    fired_at: float | None = None
    resolved_at: float | None = None
    recovered_since: float | None = None
    values: dict[str, Any] = field(default_factory=dict)
    """The numbers of its latest reading: an evaluation without one (no data in the window, the rule guarded, the
    night no longer judged) keeps these, so an alert resolved for want of data still says what it last read."""
    fired_values: dict[str, Any] = field(default_factory=dict)
    """The numbers when it fired, shown beside the latest ones."""
    peak: Severity | None = None
    """The most severe tier it has fired at: a resolved emergency stays news until acknowledged."""
    flips: list[float] = field(default_factory=list)
    flapping: bool = False
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    ack_comment: str | None = None


@dataclass(frozen=True)
class Transition:
    kind: TransitionKind
    alert: Alert
    at: float
    severity: Severity
    previous_severity: Severity | None
    values: dict[str, Any]
    flapping: bool


class Lifecycle:
    """Every alert's state; feed it each evaluation's observations with the evaluation time."""

    def __init__(self, alerts: list[Alert] | None = None) -> None:
        self.alerts: dict[str, Alert] = {a.fingerprint: a for a in alerts or [] if a.status != "resolved"}
        self._recent: dict[str, list[float]] = {}
        """Flips of recently resolved alerts by fingerprint, in the order they resolved (oldest first)."""

    def observe(
        self, observations: list[Observation], now: float, for_s: dict[str, float], campaign: str | None = None
    ) -> list[Transition]:
        """Apply one evaluation at ``now``. ``for_s`` maps rule names to their pending duration.

        A fingerprint that is not observed at all (its rule was removed, its SKU vanished, its campaign's
        night ended) is treated as fully recovered. With ``campaign``, the observations are that campaign's,
        at ``now`` on its clock, and only its alerts are touched: each campaign runs on its own clock.
        """
        transitions: list[Transition] = []
        seen: set[str] = set()
        for observation in observations:
            seen.add(observation.fingerprint)
            transitions += self._observe(observation, now, for_s.get(observation.rule, 0.0))
        for key in [k for k in self.alerts if k not in seen]:
            alert = self.alerts[key]
            if campaign is not None and alert.labels.get("campaign") != campaign:
                continue
            gone = Observation(alert.rule, alert.labels, frozenset(), frozenset(alert.active), alert.values)
            transitions += self._observe(gone, now, for_s.get(alert.rule, 0.0))
        return transitions

    def hold(self, campaign: str) -> None:
        """``campaign`` is not judged this time (its stored events are being replayed in): a firing alert keeps
        its state, a pending one is dropped, so its ``for`` counts again from the first evaluation on complete
        data."""
        for key in [k for k, a in self.alerts.items() if a.labels.get("campaign") == campaign]:
            if self.alerts[key].status == "pending":
                del self.alerts[key]

    def _observe(self, observation: Observation, now: float, for_s: float) -> list[Transition]:
        key = observation.fingerprint
        alert = self.alerts.get(key)
        if alert is None:
            if not observation.triggered:
                return []
            alert = Alert(
                id=f"{key}-{int(now * 1000)}",
                fingerprint=key,
                rule=observation.rule,
                labels=observation.labels,
                status="pending",
                severity=Severity(most_severe(set(observation.triggered))),
                active=set(observation.triggered),
                pending_since=now,
                flips=list(self._recent.get(key, [])),
            )
            self.alerts[key] = alert
        alert.active = (alert.active - observation.recovered) | observation.triggered
        if has_reading(observation.values) or not alert.values:
            alert.values = observation.values
        if alert.status == "pending":
            return self._pending(alert, now, for_s)
        return self._firing(alert, now)

    def _pending(self, alert: Alert, now: float, for_s: float) -> list[Transition]:
        if not alert.active:
            del self.alerts[alert.fingerprint]
            return []
        alert.severity = Severity(most_severe(alert.active))
        if now - alert.pending_since < for_s:
            return []
        alert.status, alert.fired_at = "firing", now
        alert.fired_values, alert.peak = dict(alert.values), alert.severity
        self._flip(alert, now)
        return [self._transition("firing", alert, now, None)]

    def _firing(self, alert: Alert, now: float) -> list[Transition]:
        if alert.active:
            alert.recovered_since = None
            severity = Severity(most_severe(alert.active))
            if severity == alert.severity:
                return []
            previous, alert.severity = alert.severity, severity
            alert.peak = Severity(most_severe({severity, alert.peak or severity}))
            kind: TransitionKind = "escalated" if rank(severity) > rank(previous) else "deescalated"
            return [self._transition(kind, alert, now, previous)]
        if alert.recovered_since is None:
            alert.recovered_since = now
        if alert.flapping and now - alert.recovered_since < FLAP_STABLE_S:
            return []
        alert.status, alert.resolved_at = "resolved", now
        self._flip(alert, now)
        self._remember(alert, now)
        del self.alerts[alert.fingerprint]
        return [self._transition("resolved", alert, now, alert.severity)]

    def _remember(self, alert: Alert, now: float) -> None:
        """Keep a resolved alert's flips. Entries are in the order they resolved, and each one's last flip is its
        resolution, so the expired ones are at the front; past ``MAX_RECENT_RESOLVED`` the oldest goes too."""
        self._recent.pop(alert.fingerprint, None)
        self._recent[alert.fingerprint] = alert.flips
        while self._recent:
            oldest = next(iter(self._recent))
            expired = now - self._recent[oldest][-1] >= FLAP_WINDOW_S
            if not expired and len(self._recent) <= MAX_RECENT_RESOLVED:
                break
            if not expired:
                log.warning(
                    "flap history full: a resolved alert's flips are forgotten before the flap window ends",
                    extra={"fingerprint": oldest, "max_recent_resolved": MAX_RECENT_RESOLVED},
                )
            del self._recent[oldest]

    @staticmethod
    def _flip(alert: Alert, now: float) -> None:
        alert.flips = [t for t in alert.flips if now - t < FLAP_WINDOW_S] + [now]
        alert.flapping = len(alert.flips) >= FLAP_TRANSITIONS

    @staticmethod
    def _transition(kind: TransitionKind, alert: Alert, now: float, previous: Severity | None) -> Transition:
        return Transition(kind, alert, now, alert.severity, previous, dict(alert.values), alert.flapping)

    def acknowledge(self, alert_id: str, who: str, comment: str | None, now: float) -> Alert | None:
        """Record an acknowledgment on the current occurrence; None when no active alert has this id."""
        for alert in self.alerts.values():
            if alert.id == alert_id:
                alert.acknowledged_by, alert.acknowledged_at, alert.ack_comment = who, now, comment
                return alert
        return None
