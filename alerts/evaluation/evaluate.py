"""Rule evaluation: turn metric values into observations (which tiers hold, which have recovered).

Pure: values come from a ``MetricView`` (the live engine, or CSV series in a
backtest) at the time it names; nothing here reads a clock or a database.
Dynamic rules keep one detector per watched series in the ``Evaluator``;
it is fed each completed window once, so it is deterministic for a given
sequence of evaluations.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from alerts.evaluation.detectors import Detector, DetectorConfig
from alerts.evaluation.lifecycle import Observation
from alerts.evaluation.metricview import POINT_IN_TIME
from alerts.evaluation.rules import (
    AnyRule,
    Change,
    Condition,
    CorrelationRule,
    DynamicRule,
    Margin,
    Signal,
    StaticRule,
)
from alerts.evaluation.severity import MOST_SEVERE_FIRST, Severity
from app.metrics.engine import DERIVED
from app.metrics.measures import MONEY

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
DYNAMIC_RECOVER_GAP = 0.15
"""A dynamic tier recovers when the score falls this far below the tier's threshold."""
COUNT_RATIOS = {name: pair for name, pair in DERIVED.items() if not MONEY & set(pair)}
"""Ratios of two counts (conversion, payment, cart and refund rates): their changes can be tested like counts."""
MAX_BACKFILL_POINTS = 1440
"""A new dynamic series (first evaluation, rule reload, restart) is replayed from stored metrics up to this far."""


def detector_for(rule: DynamicRule) -> Detector:
    """The dynamic detector a rule asks for; its warm-up is the rule's ``min_history`` in window steps."""
    points = max(1, int(rule.min_history_s / rule.window_s))
    return Detector(DetectorConfig(sensitivity=rule.sensitivity, direction=rule.direction, min_history=points))


class MetricView(Protocol):
    """Metric values as the rules see them; ``now`` is the evaluation time."""

    now: float

    def campaigns(self) -> list[str]: ...

    def labels(self, campaign: str, by: str) -> list[str]: ...

    def value(
        self, campaign: str, metric: str, start: float, end: float, by: str | None, label: str | None
    ) -> float | None:
        """The metric over [start, end); point-in-time metrics (stock) ignore the range."""

    def baseline(
        self, campaign: str, metric: str, start: float, end: float, by: str | None, label: str | None
    ) -> float | None:
        """The same metric over the same range moved onto the baseline campaign's clock, or None without one."""

    def attribute(self, campaign: str, sku: str, name: str) -> float | None:
        """A SKU catalog attribute such as ``safety_stock``."""

    def growth(self, campaign: str, metric: str) -> float | None:
        """This year's pre-heat total of ``metric`` over last year's for the same span of the pre-heat."""

    def data_since(self, campaign: str) -> float | None:
        """When the campaign's earliest counted event occurred; None while it has none."""


@dataclass(frozen=True)
class Reading:
    value: float | None
    """What the conditions compare: the metric, or its change; None when undefined or, for a change, not
    significant (``min_z``)."""
    raw: float | None
    reference: float | None = None
    settled: float | None = None
    """What recovery compares: ``value``, or a change too small to be significant, which still says how far the
    metric is from its reference (a firing drop recovers once the metric is back, significant or not)."""


def _reading(
    view: MetricView,
    campaign: str,
    metric: str,
    window_s: float,
    change: Change | None,
    by: str | None,
    label: str | None,
    at: float,
) -> Reading:
    raw = view.value(campaign, metric, at - window_s, at, by, label)
    if change is None or raw is None:
        return Reading(raw, raw, settled=raw)
    if change.vs == "previous":
        over = change.over_s
        earlier = view.value(campaign, metric, at - window_s - over, at - window_s, by, label)
        reference = earlier * window_s / over if earlier is not None and metric_is_sum(metric) else earlier
    else:
        reference = view.baseline(campaign, metric, at - window_s, at, by, label)
    if change.vs == "baseline" and reference is not None and change.scaled:
        growth = view.growth(campaign, metric)
        reference = reference * growth if growth is not None else None
    if reference is None or reference == 0:
        return Reading(None, raw, reference)
    if reference <= change.min_reference:
        return Reading(None, raw, reference, raw / reference - 1)
    if change.min_z and not _significant(
        view, campaign, metric, raw, reference, change.min_z, at - window_s, at, by, label
    ):
        return Reading(None, raw, reference, raw / reference - 1)
    return Reading(raw / reference - 1, raw, reference, raw / reference - 1)


def _significant(
    view: MetricView,
    campaign: str,
    metric: str,
    raw: float,
    reference: float,
    min_z: float,
    start: float,
    end: float,
    by: str | None,
    label: str | None,
) -> bool:
    """Whether ``raw`` differs from ``reference`` by ``min_z`` standard deviations of Poisson counts:
    ``|current - expected| / sqrt(current + expected)``. A count is its own current; a ratio of counts
    (paid orders per visit…) is judged on its numerator, whose expected count is the reference ratio times the
    window's denominator, so a drop from 6 orders to 4 at night weighs what it is, not what -33% would at the
    peak. Other metrics (amounts, named metrics) are not tested."""
    if metric_is_sum(metric):
        current, expected = raw, reference
    elif metric in COUNT_RATIOS:
        denominator = view.value(campaign, COUNT_RATIOS[metric][1], start, end, by, label) or 0.0
        current, expected = raw * denominator, reference * denominator
    else:
        return True
    return abs(current - expected) >= min_z * math.sqrt(current + expected)


def metric_is_sum(metric: str) -> bool:
    """Sums scale with the window length (orders per 10 minutes ≠ per minute); means, ratios and stock do not."""
    return not (
        metric in DERIVED or metric == "top_buyer_share" or metric in POINT_IN_TIME or metric.startswith("metric:")
    )


def _threshold(view: MetricView, campaign: str, labels: dict[str, str], value: float | str) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    sku = labels.get("sku")
    return view.attribute(campaign, sku, value) if sku else None


def _recovery(condition: Condition, threshold: float, margin: Margin) -> tuple[str, float]:
    """The opposite comparison and the threshold past which a firing tier recovers."""
    if condition.op in ("<", "<="):
        return ">=", threshold + margin.beyond(threshold)
    if condition.op in (">", ">="):
        return "<=", threshold - margin.beyond(threshold)
    return "!=" if condition.op == "==" else "==", threshold


@dataclass
class Evaluator:
    """Evaluates every rule for every campaign and label; holds the dynamic rules' detectors."""

    rules: Sequence[AnyRule]
    detector_factory: Callable[[DynamicRule], Any] = detector_for
    _detectors: dict[tuple[str, tuple[tuple[str, str], ...]], _DynamicSeries] = field(default_factory=dict)

    def keep_detectors(self, previous: Evaluator, rules: list[str]) -> None:
        """Carry over the learned state of dynamic rules whose definition did not change (rule reload)."""
        kept = set(rules)
        self._detectors.update({k: v for k, v in previous._detectors.items() if k[0] in kept})

    def for_seconds(self) -> dict[str, float]:
        return {rule.name: rule.for_s for rule in self.rules}

    def evaluate(self, view: MetricView, marks: Mapping[str, str] | None = None) -> list[Observation]:
        """Observe every rule for every campaign of ``view``; ``marks`` are labels every alert gets (a rehearsal's
        ``rehearsal="true"``)."""
        observations: list[Observation] = []
        for campaign in view.campaigns():
            for rule in self.rules:
                if rule.campaign is not None and rule.campaign != campaign:
                    continue
                label_values: Sequence[str | None] = view.labels(campaign, rule.by) if rule.by else [None]
                for label in label_values:
                    labels = {**rule.labels, "campaign": campaign, **(marks or {})}
                    if rule.by and label is not None:
                        labels[rule.by] = label
                    observations.append(self._observe(rule, view, campaign, label, labels))
        return observations

    def _observe(
        self, rule: AnyRule, view: MetricView, campaign: str, label: str | None, labels: dict[str, str]
    ) -> Observation:
        if isinstance(rule, DynamicRule):
            return self._dynamic(rule, view, campaign, label, labels)
        if self._guarded(rule, view, campaign, label):
            return Observation(rule.name, labels, frozenset(), frozenset(Severity), {"guarded": True})
        if isinstance(rule, StaticRule):
            return self._static(rule, view, campaign, label, labels)
        return self._correlation(rule, view, campaign, label, labels)

    def _static(
        self, rule: StaticRule, view: MetricView, campaign: str, label: str | None, labels: dict[str, str]
    ) -> Observation:
        reading = _reading(view, campaign, rule.metric, rule.window_s, rule.change, rule.by, label, view.now)
        triggered: set[str] = set()
        recovered: set[str] = set()
        thresholds: dict[str, float] = {}
        for severity, condition in rule.conditions.tiers():
            threshold = _threshold(view, campaign, labels, condition.value)
            if reading.settled is None or threshold is None:
                recovered.add(severity)
                continue
            thresholds[severity] = threshold
            if reading.value is not None and OPS[condition.op](reading.value, threshold):
                triggered.add(severity)
                continue
            op, limit = _recovery(condition, threshold, rule.margin)
            if condition.recover is not None:
                limit = _threshold(view, campaign, labels, condition.recover) or limit
            if OPS[op](reading.settled, limit):
                recovered.add(severity)
        decisive = [s for s in MOST_SEVERE_FIRST if s in triggered] or [s for s in Severity if s in thresholds]
        values: dict[str, Any] = {
            "value": reading.value,
            "raw": reading.raw,
            "reference": reading.reference,
            "threshold": thresholds[decisive[0]] if decisive else None,
        }
        return Observation(rule.name, labels, frozenset(triggered), frozenset(recovered), values)

    def _signal(
        self, signal: Signal, view: MetricView, campaign: str, by: str | None, label: str | None
    ) -> tuple[bool, float | None]:
        """Whether the signal holds, and what it read: a change too small to be significant does not hold but is
        still the change its alert's text says (a resolved slow-pages alert reads "−4%", not a dash)."""
        at = view.now - signal.lag_s
        reading = _reading(view, campaign, signal.metric, signal.window_s, signal.change, by, label, at)
        return reading.value is not None and OPS[signal.op](reading.value, signal.value), reading.settled

    def _correlation(
        self, rule: CorrelationRule, view: MetricView, campaign: str, label: str | None, labels: dict[str, str]
    ) -> Observation:
        values: dict[str, Any] = {}
        results_all: list[bool] = []
        results_any: list[bool] = []
        for group, results in ((rule.all, results_all), (rule.any, results_any)):
            for signal in group:
                holds, value = self._signal(signal, view, campaign, rule.by, label)
                change = "_change" if signal.change else ""
                lag = f"@-{signal.lag}" if signal.lag != "0s" else ""
                values[f"{signal.metric}{change}{lag}"] = value
                results.append(holds)
        holds = (all(results_all) if results_all else True) and (any(results_any) if results_any else True)
        tiers = frozenset({rule.severity})
        return Observation(rule.name, labels, tiers if holds else frozenset(), frozenset() if holds else tiers, values)

    def _dynamic(
        self, rule: DynamicRule, view: MetricView, campaign: str, label: str | None, labels: dict[str, str]
    ) -> Observation:
        """The series' verdict on its latest point. Its guard is judged once per window, as its points are: the
        live loop evaluates a catalogue's SKUs several times a window, and a guard reads a window of the metrics."""
        series = self._series(rule, labels)
        step = int(view.now // rule.window_s)
        if series.guard_step != step:
            series.guard_step, series.guarded = step, self._guarded(rule, view, campaign, label)
        if series.guarded:
            return Observation(rule.name, labels, frozenset(), frozenset(Severity), {"guarded": True})
        series.advance(view, campaign, label)
        return series.observation(labels)

    def observe_point(self, rule: DynamicRule, view: MetricView, campaign: str, at: float, value: float) -> Observation:
        """Feed one point of an unlabelled dynamic rule's series directly (a backtest row) and judge it.

        The live path builds points from the rule's window over the metric view; a backtest's
        CSV rows are already the points, each judged at its own timestamp, so the detector
        sees exactly the rows (irregular spacing included) and nothing after them. The view
        has no baseline campaign, so ``expected: baseline`` rules see no points.
        """
        labels = {"campaign": campaign, **rule.labels}
        series = self._series(rule, labels)
        if rule.expected != "baseline":
            series.feed(at, value, None)
        if self._guarded(rule, view, campaign, None):
            return Observation(rule.name, labels, frozenset(), frozenset(Severity), {"guarded": True})
        return series.observation(labels)

    def _guarded(self, rule: AnyRule, view: MetricView, campaign: str, label: str | None) -> bool:
        """True when one of the rule's guard signals does not hold (the rule is then not judged)."""
        return bool(rule.guard) and not all(self._signal(s, view, campaign, rule.by, label)[0] for s in rule.guard)

    def _series(self, rule: DynamicRule, labels: dict[str, str]) -> _DynamicSeries:
        key = (rule.name, tuple(sorted(labels.items())))
        series = self._detectors.get(key)
        if series is None:
            series = self._detectors[key] = _DynamicSeries(rule, self.detector_factory(rule))
        return series


@dataclass
class _DynamicSeries:
    """One watched series of a dynamic rule: feeds each completed window to its detector exactly once.

    The baseline is last year's value at the same offset times this year's pre-heat growth, so the
    detector starts from a curve already grown to this year's level. Before the pre-heat is long enough
    to measure the growth, last year's value is given as is: the detector learns any remaining growth.
    """

    rule: DynamicRule
    detector: Any
    last_step: int | None = None
    score: float = 0.0
    values: dict[str, Any] = field(default_factory=dict)
    back: dict[Severity, int] = field(default_factory=dict)
    """Per tier, how many points in a row the score has been below its recovery level (the cooldown's count)."""
    guard_step: int | None = None
    """The window at whose start the rule's guard was last judged, and whether it then held the rule back."""
    guarded: bool = False
    judged: Observation | None = None
    """The observation of the latest point: the live loop asks several times per window, and a catalogue's worth of
    SKUs are asked each time, so it is built once per point."""

    def advance(self, view: MetricView, campaign: str, label: str | None) -> None:
        """Feed every window completed since the last call (on the first, the warm-up's worth before now)."""
        step = self.rule.window_s
        current = int(view.now // step)
        if self.last_step is not None and self.last_step >= current - 1:
            return
        backfill = min(MAX_BACKFILL_POINTS, int(self.rule.min_history_s / step) + 1)
        first = current - backfill if self.last_step is None else self.last_step + 1
        since = view.data_since(campaign)
        if since is None:
            return
        first = max(first, math.ceil(since / step))  # windows before the first event would teach the model zeros
        growth = view.growth(campaign, self.rule.metric) if self.rule.expected != "forecast" else None
        for index in range(first, current):
            start, end = index * step, (index + 1) * step
            value = view.value(campaign, self.rule.metric, start, end, self.rule.by, label)
            if value is None:
                continue
            expected = None
            if self.rule.expected != "forecast":
                expected = view.baseline(campaign, self.rule.metric, start, end, self.rule.by, label)
                if expected is None and self.rule.expected == "baseline":
                    continue
                if expected is not None and growth is not None:
                    expected *= growth
            self.feed(end, value, expected)
        self.last_step = current - 1

    def feed(self, at: float, value: float, expected: float | None) -> None:
        """Judge one point of the series; the cooldown counts these points, not evaluations or seconds."""
        assessment = self.detector.update(at, value, expected)
        self.score = assessment.score
        self.judged = None
        for severity, threshold in self.rule.tiers.items():
            self.back[severity] = self.back.get(severity, 0) + 1 if self.score < threshold - DYNAMIC_RECOVER_GAP else 0
        self.values = {
            "value": value,
            "expected": assessment.expected,
            "lower": assessment.lower,
            "upper": assessment.upper,
            "baseline": expected,
        }

    def observation(self, labels: dict[str, str]) -> Observation:
        """Which tiers the current score holds, which it has clearly left (by DYNAMIC_RECOVER_GAP) for longer than
        the rule's cooldown, and which it has left more recently (settling: a firing alert keeps them). Before the
        first point every tier is recovered: there is nothing to keep firing for."""
        if self.judged is not None:
            return self.judged
        rule, score = self.rule, self.score
        triggered: set[str] = set()
        recovered: set[str] = set()
        settling: set[str] = set()
        for severity, threshold in rule.tiers.items():
            if score >= threshold:
                triggered.add(severity)
            back = self.back.get(severity)
            if back is None or back > rule.cooldown_points:
                recovered.add(severity)
            elif back:
                settling.add(severity)
        self.judged = Observation(
            rule.name,
            labels,
            frozenset(triggered),
            frozenset(recovered),
            {**self.values, "score": score},
            frozenset(settling),
        )
        return self.judged
