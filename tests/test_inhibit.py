"""Inhibition: the shipped pack's rules, and the one-pass index agrees with the quadratic definition."""

from __future__ import annotations

import random
from pathlib import Path

from alerts.evaluation.inhibit import DEFAULT_INHIBIT_RULES, InhibitRule, inhibitors
from alerts.evaluation.rules import load_directory
from alerts.evaluation.silences import matches_all

SHIPPED = (*DEFAULT_INHIBIT_RULES, *load_directory(Path(__file__).resolve().parent.parent / "rules").inhibit)
"""What the server applies with the default rule pack."""

RULES = (
    *DEFAULT_INHIBIT_RULES,
    InhibitRule(
        source=["rule=payment_outage"], target=["rule=~conversion_drop|orders_below_last_year"], equal=["campaign"]
    ),
)


def test_emergency_on_a_sku_mutes_that_skus_warnings_only():
    firing = [
        ("e1", {"campaign": "d11", "sku": "SKU-1", "severity": "emergency", "rule": "stock_low"}),
        ("w1", {"campaign": "d11", "sku": "SKU-1", "severity": "warning", "rule": "cart_surge"}),
        ("w2", {"campaign": "d11", "sku": "SKU-2", "severity": "warning", "rule": "cart_surge"}),
        ("c1", {"campaign": "d11", "severity": "warning", "rule": "conversion_drop"}),
        ("p1", {"campaign": "d11", "severity": "emergency", "rule": "payment_outage"}),
    ]
    assert inhibitors(firing, RULES) == {"w1": ["e1"], "c1": ["p1"]}


def test_shipped_pack_mutes_the_conversion_drop_a_payment_outage_causes():
    firing = [
        ("p1", {"campaign": "d11", "severity": "emergency", "rule": "payment_outage"}),
        ("c1", {"campaign": "d11", "severity": "warning", "rule": "conversion_drop"}),
        ("o1", {"campaign": "d11", "severity": "warning", "rule": "orders_below_last_year"}),
        ("c2", {"campaign": "618", "severity": "warning", "rule": "conversion_drop"}),
        ("g1", {"campaign": "d11", "severity": "warning", "rule": "gmv_anomaly"}),
    ]
    assert inhibitors(firing, SHIPPED) == {"c1": ["p1"], "o1": ["p1"]}, "same campaign only, and only what it explains"
    assert inhibitors(firing[1:], SHIPPED) == {}, "no outage firing, nothing muted"


def brute_force(firing: list[tuple[str, dict[str, str]]]) -> dict[str, list[str]]:
    """Every rule, every target, every source: the definition, quadratic."""
    found: dict[str, list[str]] = {}
    for rule in RULES:
        sources, targets = rule.parsed()
        for target_id, target in firing:
            if not matches_all(targets, target):
                continue
            for source_id, source in firing:
                if (
                    source_id != target_id
                    and matches_all(sources, source)
                    and all(source.get(n) == target.get(n) for n in rule.equal)
                ):
                    found.setdefault(target_id, []).append(source_id)
    return found


def test_bulk_pass_equals_the_definition_on_random_nights():
    rng = random.Random(7)
    for _ in range(50):
        firing = [
            (
                f"a{i}",
                {
                    "campaign": rng.choice(["d11", "618"]),
                    "severity": rng.choice(["reminder", "warning", "emergency"]),
                    "rule": rng.choice(["stock_low", "cart_surge", "payment_outage", "conversion_drop"]),
                    **({"sku": rng.choice(["SKU-1", "SKU-2", "SKU-3"])} if rng.random() < 0.7 else {}),
                },
            )
            for i in range(rng.randint(0, 40))
        ]
        assert inhibitors(firing, RULES) == brute_force(firing)
