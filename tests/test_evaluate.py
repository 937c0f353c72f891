"""Rule evaluation against a fake metric view: static (absolute, catalog, relative), correlation with lag, dynamic."""

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from alerts.evaluation import rules
from alerts.evaluation.detectors import Assessment
from alerts.evaluation.evaluate import Evaluator
from alerts.evaluation.rules import load_file, parse
from app.core.configfile import ConfigError

RULES = """
rules:
  - name: stock_low
    kind: static
    metric: stock_on_hand
    by: sku
    summary: {en: "{sku} low", zh: "{sku} 库存低"}
    runbook: {en: replenish, zh: 补货}
    conditions:
      emergency: {op: "<=", value: 0}
      warning: {op: "<", value: safety_stock}
      reminder: {op: "<", value: warning_level}
  - name: gmv_drop
    kind: static
    metric: gmv_paid
    window: 1m
    change: {vs: previous, over: 10m, min_reference: 10}
    summary: {en: gmv down, zh: 成交额下降}
    runbook: {en: check, zh: 检查}
    conditions:
      warning: {op: "<=", value: -0.2}
  - name: gmv_below_last_year
    kind: static
    metric: gmv_paid
    window: 1m
    change: {vs: baseline, min_reference: 10}
    summary: {en: gmv below last year, zh: 成交额低于去年}
    runbook: {en: check, zh: 检查}
    conditions:
      warning: {op: "<=", value: -0.2}
  - name: gmv_below_last_year_grown
    kind: static
    metric: gmv_paid
    window: 1m
    change: {vs: baseline, scaled: true, min_reference: 10}
    summary: {en: gmv below last year grown, zh: 成交额低于去年（按增速）}
    runbook: {en: check, zh: 检查}
    conditions:
      warning: {op: "<=", value: -0.2}
  - name: slow_pages
    kind: correlation
    summary: {en: slow, zh: 慢}
    runbook: {en: check pages, zh: 检查页面}
    all:
      - {metric: visits, window: 5m, change: {vs: previous, over: 15m}, op: ">=", value: 0.3}
      - {metric: conversion_rate, window: 5m, change: {vs: previous, over: 15m}, op: "<=", value: -0.2, lag: 1m}
  - name: payment_trouble
    kind: correlation
    severity: emergency
    summary: {en: payments failing, zh: 支付失败}
    runbook: {en: switch gateway, zh: 切换支付通道}
    all:
      - {metric: orders_created, window: 1m, op: ">=", value: 5}
    any:
      - {metric: payment_rate, window: 1m, op: "<=", value: 0.5}
      - {metric: "metric:payment_success_rate", window: 1m, op: "<", value: 0.8}
"""
SHIPPED = load_file(Path(__file__).resolve().parent.parent / "rules" / "double11.yaml")


@dataclass
class FakeView:
    now: float
    values: dict = field(default_factory=dict)
    """(metric, start, end, label) → value; missing keys use ``default``."""
    default: dict = field(default_factory=dict)
    baselines: dict = field(default_factory=dict)
    """(metric, start, end, label) → the baseline campaign's value over that range on this campaign's clock."""
    pre_heat_growth: float | None = None

    def campaigns(self):
        return ["c"]

    def labels(self, campaign, by):
        return ["A", "B"]

    def value(self, campaign, metric, start, end, by, label):
        return self.values.get((metric, start, end, label), self.default.get(metric))

    def baseline(self, campaign, metric, start, end, by, label):
        return self.baselines.get((metric, start, end, label))

    def growth(self, campaign, metric):
        return self.pre_heat_growth

    def data_since(self, campaign):
        return 0.0

    def attribute(self, campaign, sku, name):
        return {"safety_stock": 10.0, "warning_level": 20.0}[name]


def observations(view):
    return {(o.rule, o.labels.get("sku")): o for o in Evaluator(parse(RULES).rules).evaluate(view)}


def test_stock_tiers_from_catalog_attributes_with_hysteresis():
    view = FakeView(1000.0, {("stock_on_hand", 940.0, 1000.0, "A"): 5.0, ("stock_on_hand", 940.0, 1000.0, "B"): 20.5})
    found = observations(view)
    a, b = found[("stock_low", "A")], found[("stock_low", "B")]
    assert a.triggered == {"warning", "reminder"} and a.values["threshold"] == 10.0
    assert a.recovered == {"emergency"}
    assert b.triggered == set()
    assert b.recovered == {"emergency", "warning"}, "20.5 is within 5% of the warning level: reminder holds its state"


def test_relative_drop_against_the_previous_period():
    view = FakeView(1200.0, {("gmv_paid", 1140.0, 1200.0, None): 70.0, ("gmv_paid", 540.0, 1140.0, None): 1000.0})
    drop = observations(view)[("gmv_drop", None)]
    assert drop.triggered == {"warning"}
    assert abs(drop.values["value"] - (-0.3)) < 1e-9 and drop.values["reference"] == 100.0
    quiet = FakeView(1200.0, {("gmv_paid", 1140.0, 1200.0, None): 3.0, ("gmv_paid", 540.0, 1140.0, None): 50.0})
    assert observations(quiet)[("gmv_drop", None)].triggered == set(), "a reference below min_reference is no signal"


def test_relative_drop_against_the_same_minute_of_the_baseline_campaign():
    this_minute = ("gmv_paid", 1140.0, 1200.0, None)
    view = FakeView(1200.0, {this_minute: 70.0}, baselines={this_minute: 100.0})
    drop = observations(view)[("gmv_below_last_year", None)]
    assert drop.triggered == {"warning"} and drop.values["reference"] == 100.0
    assert abs(drop.values["value"] - (-0.3)) < 1e-9
    earlier_minute = FakeView(1200.0, {this_minute: 70.0}, baselines={("gmv_paid", 1080.0, 1140.0, None): 100.0})
    assert observations(earlier_minute)[("gmv_below_last_year", None)].values["reference"] is None
    small = FakeView(1200.0, {this_minute: 1.0}, baselines={this_minute: 8.0})
    below = observations(small)[("gmv_below_last_year", None)]
    assert below.triggered == set(), "below min_reference: no alert on small numbers"
    assert below.recovered == set(), "but an alert already firing holds: 1 against 8 is still a drop"
    back = FakeView(1200.0, {this_minute: 9.0}, baselines={this_minute: 8.0})
    assert observations(back)[("gmv_below_last_year", None)].recovered == {"warning"}


def test_relative_drop_against_the_baseline_grown_by_the_pre_heat():
    this_minute = ("gmv_paid", 1140.0, 1200.0, None)
    view = FakeView(1200.0, {this_minute: 95.0}, baselines={this_minute: 100.0}, pre_heat_growth=1.25)
    found = observations(view)
    assert found[("gmv_below_last_year", None)].triggered == set(), "5% below last year as it was"
    grown = found[("gmv_below_last_year_grown", None)]
    assert grown.triggered == {"warning"} and grown.values["reference"] == 125.0
    assert abs(grown.values["value"] - (-0.24)) < 1e-9
    unknown = FakeView(1200.0, {this_minute: 95.0}, baselines={this_minute: 100.0})
    before_growth = observations(unknown)[("gmv_below_last_year_grown", None)]
    assert before_growth.values["value"] is None and before_growth.recovered == {"warning"}


def test_correlation_needs_every_signal_and_honours_lag():
    now = 3600.0
    values = {
        ("visits", now - 300, now, None): 1300.0,
        ("visits", now - 1200, now - 300, None): 3000.0,
        ("conversion_rate", now - 60 - 300, now - 60, None): 0.02,
        ("conversion_rate", now - 60 - 1200, now - 60 - 300, None): 0.04,
    }
    hit = observations(FakeView(now, values))[("slow_pages", None)]
    assert hit.triggered == {"warning"}
    assert hit.values["visits_change"] > 0.29 and hit.values["conversion_rate_change@-1m"] == -0.5
    values[("conversion_rate", now - 60 - 300, now - 60, None)] = 0.039
    miss = observations(FakeView(now, values))[("slow_pages", None)]
    assert miss.triggered == set() and miss.recovered == {"warning"}


def test_correlation_any_needs_one_of_its_signals_besides_all_of_all():
    now = 600.0
    busy = {"orders_created": 20.0, "payment_rate": 0.9, "metric:payment_success_rate": 0.99}

    def trouble(**changed):
        return observations(FakeView(now, default={**busy, **changed}))[("payment_trouble", None)]

    assert trouble().triggered == set()
    assert trouble(payment_rate=0.3).triggered == {"emergency"}
    hit = trouble(**{"metric:payment_success_rate": 0.5})
    assert hit.triggered == {"emergency"} and hit.values["metric:payment_success_rate"] == 0.5
    assert trouble(payment_rate=0.3, orders_created=2.0).triggered == set(), "all: still needs enough orders"


def shipped(name: str):
    """One rule of the default pack, as shipped."""
    return next(r for r in SHIPPED.rules if r.name == name)


def test_refunds_after_a_skus_sales_spike_as_shipped():
    now = 7200.0
    window, lag, over = 600.0, 600.0, 1800.0

    def sales(sku, spiked, earlier):
        """Units sold in the ten minutes before the last ten and in the half hour before that; refunds now."""
        return {
            ("units_sold", now - lag - window, now - lag, sku): spiked,
            ("units_sold", now - lag - window - over, now - lag - window, sku): earlier,
            ("refunds", now - window, now, sku): 8.0,
            ("refund_rate", now - window, now, sku): 0.25,
        }

    values = {**sales("A", 60.0, 60.0), **sales("B", 25.0, 60.0)}
    rule = shipped("refunds_after_sales_spike")
    found = {o.labels["sku"]: o for o in Evaluator([rule]).evaluate(FakeView(now, values))}
    assert found["A"].triggered == {"warning"}, "sold 3x its previous pace ten minutes ago, refunds now"
    assert found["A"].values["units_sold_change@-10m"] == 2.0
    assert found["B"].triggered == set(), "refunds without a sales spike before them"
    values[("refund_rate", now - window, now, "A")] = 0.1
    calm = {o.labels["sku"]: o for o in Evaluator([rule]).evaluate(FakeView(now, values))}
    assert calm["A"].triggered == set(), "a spike whose refunds stay at a normal rate"


DYNAMIC = """
rules:
  - name: gmv_anomaly
    kind: dynamic
    metric: gmv_paid
    window: 1m
    expected: baseline
    min_history: 15m
    tiers: {warning: 0.5}
    summary: {en: gmv off, zh: 成交额异常}
    runbook: {en: drill down, zh: 下钻}
"""
MINUTE = 60.0
BURST_MINUTE = 60
BURST_FACTOR = 30.0
PRE_HEAT_GROWTH = 1.25


def night(seed: int, scale: float) -> list[float]:
    """GMV per minute: a slow ramp with 2% noise, then a midnight burst 30x the ramp."""
    rng = random.Random(seed)
    return [
        scale * (100.0 + m) * (BURST_FACTOR if m == BURST_MINUTE else 1.0) * math.exp(rng.gauss(0, 0.02))
        for m in range(BURST_MINUTE + 1)
    ]


@dataclass
class CurveView:
    """One campaign minute by minute, last year's curve on this year's clock, and the pre-heat growth."""

    now: float
    this_year: list
    last_year: list
    pre_heat_growth: float | None

    def campaigns(self):
        return ["c"]

    def labels(self, campaign, by):
        return []

    def value(self, campaign, metric, start, end, by, label):
        minute = int(start // MINUTE)
        return self.this_year[minute] if end <= self.now and minute < len(self.this_year) else None

    def baseline(self, campaign, metric, start, end, by, label):
        return self.last_year[int(start // MINUTE)]

    def growth(self, campaign, metric):
        return self.pre_heat_growth

    def data_since(self, campaign):
        return 0.0

    def attribute(self, campaign, sku, name):
        return None


def burst_verdict(factor: float, pre_heat_growth: float | None = PRE_HEAT_GROWTH):
    """The dynamic rule's observation at a burst ``factor`` times last year's, grown by the pre-heat."""
    last_year, this_year = night(1, 1.0), night(2, PRE_HEAT_GROWTH)
    this_year[BURST_MINUTE] = last_year[BURST_MINUTE] * PRE_HEAT_GROWTH * factor
    evaluator = Evaluator(parse(DYNAMIC).rules)
    for minute in range(BURST_MINUTE + 1):
        (observation,) = evaluator.evaluate(CurveView((minute + 1) * MINUTE, this_year, last_year, pre_heat_growth))
    return observation, last_year[BURST_MINUTE]


def test_dynamic_burst_like_last_year_grown_by_the_pre_heat_is_normal_twice_that_is_not():
    usual, last_year = burst_verdict(1.0)
    assert usual.triggered == set() and usual.values["score"] == 0.0
    assert usual.values["baseline"] == last_year * PRE_HEAT_GROWTH, "last year's minute, scaled by the pre-heat growth"
    doubled, _ = burst_verdict(2.0)
    assert doubled.triggered == {"warning"}
    values = doubled.values
    assert values["lower"] < values["expected"] < values["upper"] < values["value"]
    assert abs(values["expected"] / (last_year * PRE_HEAT_GROWTH) - 1) < 0.1


def test_dynamic_baseline_is_last_years_as_is_until_the_pre_heat_growth_is_known():
    unknown, last_year = burst_verdict(1.0, pre_heat_growth=None)
    assert unknown.values["baseline"] == last_year


class RecordingDetector:
    """Stands in for the detector to see which windows a dynamic rule feeds it."""

    def __init__(self) -> None:
        self.fed: list[float] = []

    def update(self, at, value, expected):
        self.fed.append(at)
        return Assessment(0.0, value, value, value, ready=False)


def test_a_new_dynamic_series_is_not_backfilled_from_before_the_campaign_had_data():
    recorder = RecordingDetector()
    evaluator = Evaluator(
        parse(DYNAMIC.replace("expected: baseline", "expected: forecast")).rules, detector_factory=lambda rule: recorder
    )
    now = 100 * MINUTE

    @dataclass
    class StartedView(FakeView):
        def data_since(self, campaign):
            return 93.5 * MINUTE

    evaluator.evaluate(StartedView(now, default={"gmv_paid": 0.0}))
    assert recorder.fed == [(m + 1) * MINUTE for m in range(94, 100)], "only whole minutes since the first event"


def test_durations_are_converted_once_when_the_rules_load(monkeypatch):
    loaded = parse(RULES).rules + SHIPPED.rules
    by_name = {rule.name: rule for rule in parse(RULES).rules}
    assert by_name["gmv_drop"].change.over_s == 600.0 and by_name["slow_pages"].all[1].lag_s == 60.0

    def parsing(text: str) -> float:
        raise AssertionError(f"{text!r} parsed during evaluation")

    monkeypatch.setattr(rules, "seconds", parsing)
    evaluator = Evaluator(loaded)
    assert evaluator.evaluate(FakeView(3600.0, default={"stock_on_hand": 5.0, "orders_created": 20.0}))
    assert Evaluator(list(by_name.values())).for_seconds() == dict.fromkeys(by_name, 0.0)


def test_which_metrics_a_rule_may_name_is_passed_to_the_parser():
    column = RULES.replace("metric: stock_on_hand", "metric: shelf_count")
    with pytest.raises(ConfigError) as caught:
        parse(column, "pack.yaml")
    assert str(caught.value).startswith("pack.yaml:3:5: rules[0]: unknown metric 'shelf_count'")
    assert parse(column, "pack.yaml", rules.series_column).rules[0].metric == "shelf_count"
    with pytest.raises(ConfigError, match="metric must name a column of the series"):
        parse(column.replace("metric: shelf_count", 'metric: ""'), "pack.yaml", rules.series_column)
