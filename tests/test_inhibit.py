"""Inhibition: the bulk pass the dispatcher uses agrees with the per-alert answer the API shows."""

from __future__ import annotations

import random

from alerts.inhibit import DEFAULT_INHIBIT_RULES, InhibitRule, inhibited, inhibiting

RULES = (
    *DEFAULT_INHIBIT_RULES,
    InhibitRule(source=["rule=payment_outage"], target=["rule=~conversion_drop|orders_below_last_year"], equal=["campaign"]),
)


def test_emergency_on_a_sku_mutes_that_skus_warnings_only():
    firing = [
        ("e1", {"campaign": "d11", "sku": "SKU-1", "severity": "emergency", "rule": "stock_low"}),
        ("w1", {"campaign": "d11", "sku": "SKU-1", "severity": "warning", "rule": "cart_surge"}),
        ("w2", {"campaign": "d11", "sku": "SKU-2", "severity": "warning", "rule": "cart_surge"}),
        ("c1", {"campaign": "d11", "severity": "warning", "rule": "conversion_drop"}),
        ("p1", {"campaign": "d11", "severity": "emergency", "rule": "payment_outage"}),
    ]
    assert inhibited(firing, RULES) == {"w1", "c1"}


def test_bulk_pass_equals_per_alert_answer_on_random_nights():
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
        expected = {i for i, labels in firing if inhibiting(i, labels, firing, RULES)}
        assert inhibited(firing, RULES) == expected
