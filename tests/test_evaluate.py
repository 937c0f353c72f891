"""Rule evaluation against a fake metric view: static (absolute, catalog, relative), correlation with lag."""

from dataclasses import dataclass, field

from alerts.evaluate import Evaluator
from alerts.rules import parse

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
  - name: slow_pages
    kind: correlation
    summary: {en: slow, zh: 慢}
    runbook: {en: check pages, zh: 检查页面}
    all:
      - {metric: visits, window: 5m, change: {vs: previous, over: 15m}, op: ">=", value: 0.3}
      - {metric: conversion_rate, window: 5m, change: {vs: previous, over: 15m}, op: "<=", value: -0.2, lag: 1m}
"""


@dataclass
class FakeView:
    now: float
    values: dict = field(default_factory=dict)
    """(metric, start, end, label) → value; missing keys use ``default``."""
    default: dict = field(default_factory=dict)

    def campaigns(self):
        return ["c"]

    def labels(self, campaign, by):
        return ["A", "B"]

    def value(self, campaign, metric, start, end, by, label):
        return self.values.get((metric, start, end, label), self.default.get(metric))

    def baseline(self, campaign, metric, start, end, by, label):
        return None

    def growth(self, campaign, metric):
        return None

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
