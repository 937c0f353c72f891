"""Per-label rules over the real metrics engine: one alert per channel or category whose own series crosses the line."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

from alerts.evaluation.evaluate import Evaluator
from alerts.evaluation.lifecycle import Lifecycle, Transition
from alerts.evaluation.metricview import EngineView
from alerts.evaluation.rules import parse
from app.campaigns.model import load_file
from app.metrics.engine import Engine
from app.metrics.measures import Event

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = load_file(ROOT / "campaigns" / "double11-demo.yaml")
NOW = CAMPAIGN.phases.burst.start.timestamp() + 120
PHONE, LAPTOP = "SKU-1001", "SKU-1008"
RULES = """
rules:
  - name: cart_rush
    kind: static
    metric: add_to_cart
    by: channel
    window: 1m
    summary: {en: "{channel}: {value} carts a minute", zh: "{channel}：每分钟加购 {value}"}
    runbook: {en: check the channel's campaign, zh: 检查该渠道活动}
    conditions:
      warning: {op: ">=", value: 5}
  - name: category_selling_out
    kind: static
    metric: units_sold
    by: category
    window: 1m
    summary: {en: "{category}: {value} units a minute", zh: "{category}：每分钟售出 {value} 件"}
    runbook: {en: check the category's stock, zh: 检查该品类库存}
    conditions:
      emergency: {op: ">=", value: 10}
      warning: {op: ">=", value: 3}
"""


def events(*specs: tuple[str, str, str, int]) -> list[Event]:
    """(type, channel, sku, quantity) → stored events, one second apart in the minute before ``NOW``."""
    seq = itertools.count(1)
    return [
        Event(
            next(seq),
            kind,
            NOW - 50 + i,
            CAMPAIGN.id,
            channel,
            f"u{i}",
            None,
            f"o{i}",
            sku,
            quantity,
            Decimal("100") * quantity,
            None,
            None,
            None,
            None,
        )
        for i, (kind, channel, sku, quantity) in enumerate(specs)
    ]


def alerts(*specs: tuple[str, str, str, int]) -> dict[tuple[str, str], Transition]:
    """The transitions of one evaluation over these events, by rule and the label the rule watches."""
    engine = Engine([CAMPAIGN])
    engine.apply(events(*specs))
    evaluator = Evaluator(parse(RULES).rules)
    observations = evaluator.evaluate(EngineView(engine, CAMPAIGN.id, NOW))
    transitions = Lifecycle().observe(observations, NOW, evaluator.for_seconds())
    return {(t.alert.rule, t.alert.labels.get("channel") or t.alert.labels["category"]): t for t in transitions}


def test_a_channel_rule_fires_for_the_channel_whose_series_crosses_only():
    found = alerts(*[("add_to_cart", "douyin", PHONE, 1)] * 6, *[("add_to_cart", "tmall", PHONE, 1)] * 4)
    assert set(found) == {("cart_rush", "douyin")}
    douyin = found[("cart_rush", "douyin")]
    assert douyin.alert.labels == {"campaign": CAMPAIGN.id, "channel": "douyin"}
    assert douyin.kind == "firing" and douyin.severity == "warning" and douyin.values["value"] == 6


def test_a_category_rule_sums_the_categorys_skus_and_fires_per_category():
    found = alerts(
        *[("order_paid", "tmall", PHONE, 2)] * 3,
        ("order_paid", "jd", "SKU-1002", 5),
        *[("order_paid", "app", LAPTOP, 1)] * 2,
    )
    assert set(found) == {("category_selling_out", "phones")}, "laptops sold 2, below the line"
    phones = found[("category_selling_out", "phones")]
    assert phones.alert.labels == {"campaign": CAMPAIGN.id, "category": "phones"}
    assert phones.severity == "emergency" and phones.values["value"] == 11, "two phone SKUs, 6 + 5 units"
