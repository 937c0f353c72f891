"""The drill scenario, as a pure generator: deterministic, shaped like a Double-11 night, incidents as named."""

from collections import Counter
from pathlib import Path

import pytest

from app.campaigns.model import load_file
from app.drill.scenario import Incident, Scenario

CATALOG = load_file(Path(__file__).resolve().parent.parent / "campaigns" / "double11-demo.yaml").skus


def run(
    start: int, end: int, incidents: tuple[Incident, ...] = (), seed: int = 3
) -> tuple[Scenario, list[tuple[float, dict]]]:
    scenario = Scenario("c", CATALOG, seed, incidents=incidents)
    events = [e for t in range(start, end) for e in scenario.step(t)]
    return scenario, events


def per_minute(events, type_: str, minutes: range) -> list[int]:
    counts = Counter(int(t // 60) for t, e in events if e["type"] == type_)
    return [counts[m] for m in minutes]


def test_same_seed_same_events_and_ids_are_unique():
    _, first = run(-300, 300)
    _, second = run(-300, 300)
    assert first == second
    ids = [e["event_id"] for _, e in first]
    assert len(ids) == len(set(ids))
    _, other_seed = run(-300, 300, seed=4)
    assert other_seed != first


def test_midnight_burst_is_10_to_50_times_the_preheat_rate():
    _, events = run(-1200, 1200)
    visits = per_minute(events, "visit", range(-20, 20))
    preheat = sum(visits[:10]) / 10
    peak = max(visits[20:30])
    assert 10 <= peak / preheat <= 50


def test_funnel_rates_are_near_the_benchmarks():
    _, events = run(-600, 1800)
    n = Counter(e["type"] for _, e in events)
    assert 0.62 < n["product_view"] / n["visit"] < 0.74
    assert 0.30 < n["add_to_cart"] / n["product_view"] < 0.40
    assert 0.20 < n["order_created"] / n["add_to_cart"] < 0.30
    assert 0.88 < n["order_paid"] / n["order_created"] < 0.97
    channels = Counter(e.get("channel") for _, e in events if e["type"] == "visit")
    assert set(channels) == {"tmall", "jd", "douyin", "app", "web"}
    skus = Counter(e["sku"] for _, e in events if e["type"] == "order_paid")
    top5 = sum(c for _, c in skus.most_common(5))
    assert top5 / sum(skus.values()) > 0.4, "a long tail with hot SKUs"
    assert {"stock_level", "metric", "refund", "order_cancelled"} <= set(n)
    assert any(e["type"] == "metric" and e["metric"] == "ad_spend" for _, e in events)


def test_quiet_night_never_runs_out_of_stock():
    scenario, _ = run(-600, 3600)
    assert min(scenario._stock.values()) > 0


def test_sellout_incident_empties_the_hottest_sku():
    scenario, events = run(-60, 899, (Incident.parse("sellout@5"),))
    hot = CATALOG[0].sku
    assert scenario._stock[hot] <= 0
    carts_after = [e for t, e in events if e["type"] == "add_to_cart" and e["sku"] == hot and t > 600]
    assert carts_after, "shoppers still add the sold-out SKU to their carts"
    _, after = run(-60, 1000, (Incident.parse("sellout@5"),))
    assert any(e["type"] == "stock_adjust" and e["sku"] == hot and t >= 900 for t, e in after), "restocked once it ends"


def test_payment_outage_stops_payments_but_not_orders():
    _, events = run(0, 1500, (Incident.parse("payment_outage@10"),))
    created = per_minute(events, "order_created", range(10, 16))
    paid = per_minute(events, "order_paid", range(10, 16))
    assert sum(created) > 20 and sum(paid) < 0.15 * sum(created)
    rates = [
        e["value"]
        for t, e in events
        if e["type"] == "metric" and e["metric"] == "payment_success_rate" and 600 <= t < 960
    ]
    assert rates and max(rates) < 0.1


def test_slow_pages_raise_traffic_and_collapse_conversion():
    _, base = run(300, 1500)
    _, slow = run(300, 1500, (Incident.parse("slow_pages@10"),))
    window = range(11, 20)
    assert sum(per_minute(slow, "visit", window)) > 1.25 * sum(per_minute(base, "visit", window))
    assert sum(per_minute(slow, "order_created", window)) < 0.3 * sum(per_minute(base, "order_created", window))


def test_gmv_drop_cuts_orders_by_at_least_30_percent():
    _, base = run(300, 1500)
    _, drop = run(300, 1500, (Incident.parse("gmv_drop@10"),))
    window = range(10, 20)
    assert sum(per_minute(drop, "order_paid", window)) < 0.7 * sum(per_minute(base, "order_paid", window))


def test_brushing_is_many_orders_from_few_users():
    _, events = run(0, 600, (Incident.parse("brushing@5"),))
    buyers = Counter(e["user_id"] for t, e in events if e["type"] == "order_paid" and 300 <= t < 480 and "user_id" in e)
    top = buyers.most_common(5)
    assert all(user.startswith("brush") for user, _ in top)
    assert sum(c for _, c in top) > 0.5 * sum(buyers.values())


@pytest.mark.parametrize("text", ["meteor@3", "sellout", "sellout@soon"])
def test_bad_incidents_are_refused(text):
    with pytest.raises(ValueError):
        Incident.parse(text)
