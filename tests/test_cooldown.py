"""One incident, one page: a dynamic rule's ``cooldown``, counted in points of its series, keeps a firing alert open
while its score dips and rises again, and the same code does it live and in a backtest."""

from __future__ import annotations

import csv
import io
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from alerts.evaluation.backtest import Series, default_rules, run_series
from alerts.evaluation.detectors import Assessment
from alerts.evaluation.evaluate import Evaluator
from alerts.evaluation.lifecycle import Lifecycle, Transition
from alerts.evaluation.rules import DEFAULT_COOLDOWN_POINTS, MAX_COOLDOWN_POINTS, load_for_series, parse
from app.core.configfile import ConfigError

MINUTE = 60.0
EVALUATIONS_PER_POINT = 4
"""The live loop evaluates every few seconds; a one-minute window gives the detector one point a minute."""
RULE = """
rules:
  - name: orders_anomaly
    kind: dynamic
    metric: orders_paid
    window: 1m
    expected: forecast
    min_history: 1m
    cooldown: 5m
    summary: {en: "orders {value}", zh: "订单 {value}"}
    runbook: {en: drill down, zh: 下钻}
    tiers: {warning: 0.7, emergency: 0.95}
"""


def rule_with(text: str, source: str = "pack.yaml"):
    return parse(RULE.replace("    cooldown: 5m\n", text), source).rules[0]


def test_the_cooldown_is_counted_in_windows_and_checked_where_it_is_written():
    assert rule_with("    cooldown: 5m\n").cooldown_points == 5
    assert rule_with("").cooldown_points == DEFAULT_COOLDOWN_POINTS
    assert rule_with("    cooldown: 0s\n").cooldown_points == 0
    assert rule_with("    cooldown: 1h\n").cooldown_points == 60
    five_minute = parse(RULE.replace("window: 1m", "window: 5m").replace("cooldown: 5m", "cooldown: 30m")).rules[0]
    assert five_minute.cooldown_points == 6
    line = RULE.splitlines().index("    cooldown: 5m") + 1
    with pytest.raises(ConfigError) as caught:
        rule_with("    cooldown: 90s\n")
    assert str(caught.value).startswith(f"pack.yaml:{line}:15: rules[0].cooldown: 90s is not a whole number of windows")
    with pytest.raises(ConfigError) as caught:
        rule_with("    cooldown: 25h\n")
    assert str(caught.value).startswith(f"pack.yaml:{line}:15: rules[0].cooldown: 25h is 1500 windows")
    assert f"at most {MAX_COOLDOWN_POINTS}" in str(caught.value)
    with pytest.raises(ConfigError, match=r"pack.yaml:\d+:15: rules\[0\].cooldown: must be a duration"):
        rule_with("    cooldown: 5min\n")


class ScriptedDetector:
    """Stands in for the detector: scores the points of the series from a script, one per window."""

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores
        self.fed = 0

    def update(self, at: float, value: float, expected: float | None) -> Assessment:
        score = self.scores[self.fed] if self.fed < len(self.scores) else 0.0
        self.fed += 1
        return Assessment(score, value, value - 1, value + 1, ready=True)


@dataclass
class MinuteView:
    """One campaign whose metric is 10 every minute, read at ``now``."""

    now: float

    def campaigns(self) -> list[str]:
        return ["c"]

    def labels(self, campaign: str, by: str) -> list[str]:
        return []

    def value(self, campaign, metric, start, end, by, label) -> float | None:
        return 10.0 if end <= self.now else None

    def baseline(self, campaign, metric, start, end, by, label) -> float | None:
        return None

    def growth(self, campaign, metric) -> float | None:
        return None

    def data_since(self, campaign) -> float | None:
        return 0.0

    def attribute(self, campaign, sku, name) -> float | None:
        return None


def run(scores: list[float], rule_text: str = "    cooldown: 5m\n") -> list[tuple[str, str, int]]:
    """The transitions (kind, severity, minute) of a rule whose detector scores minute ``m`` with ``scores[m]``,
    evaluated ``EVALUATIONS_PER_POINT`` times a minute as the live loop does."""
    rule = rule_with(rule_text)
    detector = ScriptedDetector(scores)
    evaluator, lifecycle = Evaluator([rule], detector_factory=lambda _: detector), Lifecycle()
    transitions: list[Transition] = []
    for minute in range(1, len(scores) + 15):
        for k in range(EVALUATIONS_PER_POINT):
            now = minute * MINUTE + k * MINUTE / EVALUATIONS_PER_POINT
            transitions += lifecycle.observe(evaluator.evaluate(MinuteView(now)), now, evaluator.for_seconds())
    assert detector.fed == len(scores) + 14, "one point per window, however often it is evaluated"
    ids = {t.alert.id for t in transitions}
    assert len(ids) <= sum(t.kind == "firing" for t in transitions)
    return [(t.kind, t.severity.value, int(t.at // MINUTE)) for t in transitions]


QUIET = [0.0] * 5


def test_a_score_that_dips_and_rises_again_is_one_alert_until_it_has_been_back_for_the_cooldown():
    """Point ``m`` is judged at minute ``m + 1`` (its window has closed); back at points 8, 9, 11, 12…: the
    5-minute cooldown ends at the sixth point back in a row, point 16, judged at minute 17."""
    scores = [*QUIET, 0.9, 0.0, 0.85, 0.0, 0.0, 0.9, *[0.0] * 10]
    assert run(scores) == [("firing", "warning", 6), ("resolved", "warning", 17)]
    assert run(scores, "    cooldown: 0s\n") == [
        ("firing", "warning", 6),
        ("resolved", "warning", 7),
        ("firing", "warning", 8),
        ("resolved", "warning", 9),
        ("firing", "warning", 11),
        ("resolved", "warning", 13),
    ], "without a cooldown every return of the score pages again (until it is flapping)"


def test_severity_rises_while_cooling_down_and_falls_only_after_its_own_cooldown():
    """Emergency (0.95) is back below 0.8 from point 8 and recovers at its sixth point back (point 13); warning
    (0.7) holds until point 13 and recovers at point 19."""
    scores = [*QUIET, 0.8, 0.0, 0.97, *[0.75] * 6, 0.5, *[0.0] * 10]
    assert run(scores) == [
        ("firing", "warning", 6),
        ("escalated", "emergency", 8),
        ("deescalated", "warning", 14),
        ("resolved", "warning", 20),
    ]


def test_a_score_in_the_hysteresis_band_is_neither_back_nor_firing():
    """0.6 is under the warning tier but above its recovery level (0.7 - 0.15): the cooldown has not begun."""
    scores = [*QUIET, 0.9, *[0.6] * 7, *[0.0] * 10]
    assert run(scores) == [("firing", "warning", 6), ("resolved", "warning", 19)]


def test_a_pending_alert_still_needs_its_condition_throughout_its_for():
    spike = [*QUIET, 0.9, 0.0, 0.0, 0.0]
    assert run(spike, "    cooldown: 5m\n    for: 2m\n") == []
    sustained = [*QUIET, 0.9, 0.9, 0.9, 0.9, *[0.0] * 8]
    assert run(sustained, "    cooldown: 5m\n    for: 2m\n") == [("firing", "warning", 8), ("resolved", "warning", 15)]


def level_shift(shift_at: int, rows: int, seed: int = 3) -> tuple[list[float], list[float]]:
    """Minute points of a noisy level of 100 that moves to 160 at ``shift_at`` and stays there."""
    rng = random.Random(seed)
    values = [(160.0 if i >= shift_at else 100.0) + rng.gauss(0, 3) for i in range(rows)]
    return [i * MINUTE for i in range(rows)], values


def backtest(rules_text: str | None, timestamps: list[float], values: list[float], tmp_path) -> list[dict[str, str]]:
    """``warroom backtest``'s evaluation of one series (``rules_text`` or the default rule), row by row."""
    start = datetime(2026, 11, 10, tzinfo=UTC)
    text = "timestamp,value\n" + "".join(
        f"{(start + timedelta(seconds=t)).isoformat()},{v:.3f}\n" for t, v in zip(timestamps, values, strict=True)
    )
    rules = None
    if rules_text is not None:
        (tmp_path / "rules.yaml").write_text(rules_text)
        rules = load_for_series(tmp_path / "rules.yaml").rules
    out = io.StringIO()
    run_series(Series.read(io.StringIO(text), "series.csv"), rules or default_rules(), out)
    out.seek(0)
    return list(csv.DictReader(out))


def onsets(rows: list[dict[str, str]]) -> list[int]:
    """The rows at which an alert starts firing (a page)."""
    return [i for i, row in enumerate(rows) if row["firing"] == "1" and (i == 0 or rows[i - 1]["firing"] == "0")]


def test_a_level_shift_is_paged_once_then_adopted_and_resolved_after_the_cooldown(tmp_path):
    shift_at, rows = 400, 520
    rows_out = backtest(None, *level_shift(shift_at, rows), tmp_path)
    assert onsets(rows_out) == [shift_at], "paged once, at the shift"
    resolved = next(i for i in range(shift_at, rows) if rows_out[i]["firing"] == "0")
    assert resolved - shift_at <= 40, "adopted, then resolved after the cooldown: not firing for ever"
    assert all(r["firing"] == "0" for r in rows_out[resolved:])


def flickering_incidents(seed: int) -> tuple[list[float], list[float], list[range]]:
    """Heavy-tailed noise around 100 (a 3x spike now and then) and three incidents of 15 rows in which most rows
    spike 5x: anomalies whose score keeps dropping back into the band and rising again."""
    rng = random.Random(seed)
    incidents = [range(400, 415), range(600, 615), range(800, 815)]
    values = []
    for i in range(1000):
        value = 100.0 * math.exp(rng.gauss(0, 0.05))
        if rng.random() < 0.01:
            value *= 3
        if any(i in incident for incident in incidents) and rng.random() < 0.6:
            value *= 5
        values.append(value)
    return [i * MINUTE for i in range(1000)], values, incidents


@pytest.mark.parametrize("seed", [1, 3, 5])
def test_flickering_incidents_in_spiky_noise_are_one_page_each_in_a_backtest(tmp_path, seed):
    """At most one onset per incident (within it or its cooldown), and most incidents paged; the same series
    without a cooldown pages some incident again and again."""
    timestamps, values, incidents = flickering_incidents(seed)

    def pages_per_incident(rules_text: str | None) -> list[int]:
        paged = onsets(backtest(rules_text, timestamps, values, tmp_path))
        return [sum(1 for i in paged if i in range(r.start, r.stop + DEFAULT_COOLDOWN_POINTS)) for r in incidents]

    with_cooldown = pages_per_incident(None)
    assert max(with_cooldown) == 1 and sum(with_cooldown) >= 2, with_cooldown
    rules = (
        "rules:\n  - {name: v, kind: dynamic, metric: value, min_history: 300m, cooldown: 0s, "
        "summary: {en: v, zh: v}, runbook: {en: v, zh: v}}\n"
    )
    assert max(pages_per_incident(rules)) > 1, "without a cooldown an incident pages again and again"
