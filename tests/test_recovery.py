"""Recovery (hysteresis): a firing tier resolves once its value is a margin beyond the threshold, and that margin's
unit follows the value: absolute for ratios and changes, relative for counts and amounts, explicit when written."""

from pathlib import Path

import pytest

from alerts.evaluation.evaluate import Evaluator
from alerts.evaluation.lifecycle import Lifecycle
from alerts.evaluation.rules import load_file, parse
from app.core.configfile import ConfigError

SHIPPED = load_file(Path(__file__).resolve().parent.parent / "rules" / "double11.yaml")
RULE = """
rules:
  - name: watched
    kind: static
    metric: {metric}
    summary: {{en: watched, zh: 监控}}
    runbook: {{en: look, zh: 查看}}
{extra}    conditions:
      warning: {{op: "{op}", value: {value}}}
"""


class OneValue:
    """A metric view where every metric reads ``reading`` (and its reference, for changes, 1.0)."""

    def __init__(self, now: float, reading: float) -> None:
        self.now, self.reading = now, reading

    def campaigns(self) -> list[str]:
        return ["c"]

    def labels(self, campaign: str, by: str) -> list[str]:
        return []

    def value(self, campaign, metric, start, end, by, label):
        return self.reading

    def baseline(self, campaign, metric, start, end, by, label):
        return 1.0

    def growth(self, campaign, metric):
        return None

    def data_since(self, campaign):
        return 0.0

    def attribute(self, campaign, sku, name):
        return None


def lifecycle_of(rules, readings: list[float]) -> list[tuple[str, float]]:
    """The transitions of the rules over one reading a minute."""
    evaluator, lifecycle, out = Evaluator(rules), Lifecycle(), []
    for minute, reading in enumerate(readings):
        view = OneValue(60.0 * minute, reading)
        for transition in lifecycle.observe(evaluator.evaluate(view), view.now, evaluator.for_seconds(), "c"):
            out.append((transition.kind, reading))
    return out


def rule(metric: str, op: str, value: float, extra: str = ""):
    return parse(RULE.format(metric=metric, op=op, value=value, extra=extra)).rules


def test_the_shipped_payment_success_rate_alert_resolves_at_the_shops_normal_rate():
    """Firing below 95%, it resolves at 96%; a rate of 98.5% (this shop's normal) is well past it."""
    shipped = [r for r in SHIPPED.rules if r.name == "payment_success_rate_low"]
    assert lifecycle_of(shipped, [0.985, 0.05, 0.93, 0.955, 0.985]) == [
        ("firing", 0.05),
        ("deescalated", 0.93),
        ("resolved", 0.985),
    ], "0.955 is within the margin of the warning: it holds"


@pytest.mark.parametrize(
    ("metric", "op", "value", "holds", "recovers"),
    [
        ("metric:payment_success_rate", "<", 0.95, 0.955, 0.96),
        ("conversion_rate", "<", 0.02, 0.025, 0.03),
        ("metric:checkout_error_rate", ">", 0.05, 0.045, 0.04),
        ("top_buyer_share", ">=", 0.3, 0.295, 0.29),
    ],
)
def test_a_ratio_recovers_one_percentage_point_beyond_its_threshold(metric, op, value, holds, recovers):
    assert lifecycle_of(rule(metric, op, value), [value / 2 if "<" in op else 0.9, holds, recovers]) == [
        ("firing", value / 2 if "<" in op else 0.9),
        ("resolved", recovers),
    ]


def test_a_change_recovers_one_percentage_point_beyond_its_threshold():
    """The value of a change is ``current / reference - 1``: firing at -30%, it recovers at -29%."""
    change = rule("orders_created", "<=", -0.3, "    window: 1m\n    change: {vs: baseline}\n")
    assert lifecycle_of(change, [0.5, 0.705, 0.715]) == [("firing", 0.5), ("resolved", 0.715)]


def test_a_count_or_an_amount_recovers_five_percent_of_its_threshold_beyond():
    assert lifecycle_of(rule("orders_created", "<", 100), [50, 104, 105]) == [("firing", 50), ("resolved", 105)]
    assert lifecycle_of(rule("metric:page_load_ms", ">", 3000), [4000, 2851, 2850]) == [
        ("firing", 4000),
        ("resolved", 2850),
    ]


def test_an_explicit_margin_is_absolute_as_a_number_and_relative_as_a_percentage():
    absolute = rule("metric:page_load_ms", ">", 3000, "    recover_margin: 500\n")
    assert lifecycle_of(absolute, [4000, 2600, 2500]) == [("firing", 4000), ("resolved", 2500)]
    relative = rule("metric:payment_success_rate", "<", 0.9, "    recover_margin: '2%'\n")
    assert lifecycle_of(relative, [0.5, 0.917, 0.918]) == [("firing", 0.5), ("resolved", 0.918)]
    points = rule("metric:payment_success_rate", "<", 0.9, "    recover_margin: 0.005\n")
    assert lifecycle_of(points, [0.5, 0.904, 0.905]) == [("firing", 0.5), ("resolved", 0.905)]


@pytest.mark.parametrize(
    ("metric", "value", "margin", "reason"),
    [
        ("metric:payment_success_rate", 0.95, "5", "5 is a whole ratio or more"),
        ("payment_rate", 0.96, "'5%'", "would recover only at 1.008, outside the ratio's 0..1"),
        ("conversion_rate", 0.02, "'five'", "'five' is neither a number"),
        ("orders_created", 10, "-1", "-1 must be a finite number of at least 0"),
    ],
)
def test_a_margin_that_cannot_work_is_refused_at_its_line(metric, value, margin, reason):
    text = RULE.format(metric=metric, op="<", value=value, extra=f"    recover_margin: {margin}\n")
    with pytest.raises(ConfigError) as error:
        parse(text, "rules/pack.yaml")
    assert error.value.line == 8 and error.value.field == "rules[0].recover_margin", str(error.value)
    assert reason in error.value.reason


class Funnel:
    """A metric view of one minute: ``visits`` and paid orders now, and last year's conversion rate."""

    def __init__(self, visits: float, paid: float, last_year_rate: float = 0.05) -> None:
        self.now, self.visits, self.paid, self.last_year_rate = 600.0, visits, paid, last_year_rate

    def campaigns(self) -> list[str]:
        return ["c"]

    def labels(self, campaign: str, by: str) -> list[str]:
        return []

    def value(self, campaign, metric, start, end, by, label):
        return {"visits": self.visits, "orders_paid": self.paid, "conversion_rate": self.paid / self.visits}[metric]

    def baseline(self, campaign, metric, start, end, by, label):
        return self.last_year_rate

    def growth(self, campaign, metric):
        return None

    def data_since(self, campaign):
        return 0.0

    def attribute(self, campaign, sku, name):
        return None


CONVERSION_DROP = rule("conversion_rate", "<=", -0.3, "    change: {vs: baseline, min_z: 3}\n")


def test_a_ratio_of_counts_changes_significantly_only_with_enough_counts_behind_it():
    """-40% conversion from 50 expected paid orders to 30 is 2.2 sigma: noise; from 250 to 150 it is 5 sigma."""
    night = Evaluator(CONVERSION_DROP).evaluate(Funnel(1000, 30))[0]
    assert night.triggered == set() and night.values["value"] is None
    peak = Evaluator(CONVERSION_DROP).evaluate(Funnel(5000, 150))[0]
    assert peak.triggered == {"warning"} and abs(peak.values["value"] + 0.4) < 1e-9


def test_a_firing_change_holds_while_the_drop_lasts_and_recovers_once_it_is_over_significant_or_not():
    """After firing at the peak the volume falls: a -40% drop on fewer orders is no longer significant, but it
    is still a drop, so the alert holds; back within the margin of last year's rate, it resolves."""
    evaluator, lifecycle, kinds = Evaluator(CONVERSION_DROP), Lifecycle(), []
    for minute, (visits, paid) in enumerate([(5000, 150), (1000, 30), (1000, 35), (1000, 50)]):
        view = Funnel(visits, paid)
        view.now = 60.0 * minute
        for transition in lifecycle.observe(evaluator.evaluate(view), view.now, {}, "c"):
            kinds.append((transition.kind, minute))
    assert kinds == [("firing", 0), ("resolved", 3)], "-40% and -30% on 1,000 visits are no signal, but no recovery"


@pytest.mark.parametrize(("metric", "op", "value"), [("projected_pct", "<", 1.0), ("metric:cpu_pct", ">", 80)])
def test_a_ratio_that_may_pass_one_or_a_name_that_only_says_its_unit_loads(metric, op, value):
    """Pacing past target is a normal night, and ``cpu_pct`` is a percentage of 100: neither is refused."""
    assert parse(RULE.format(metric=metric, op=op, value=value, extra=""), "rules/pack.yaml").rules
