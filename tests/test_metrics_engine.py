"""The pure metrics engine: fed events and a clock, no database."""

import itertools
import pickle
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from app.campaigns import Campaign, Phase, Phases, Sku, Targets
from app.metrics.engine import MAX_CHANNELS, OTHER, TOTAL, Engine
from app.metrics.measures import Event
from app.metrics.visitors import DistinctCounter

T0 = datetime(2026, 11, 11, 0, 0, tzinfo=timezone(timedelta(hours=8))).timestamp()
_seq = itertools.count(1)


def ev(type_: str, at: float, campaign: str = "c", **fields) -> Event:
    base = dict(
        seq=next(_seq), type=type_, occurred_at=at, campaign=campaign, channel=None, user_id=None, anonymous_id=None,
        order_id=None, sku=None, quantity=None, amount=None, warehouse=None, metric=None, value=None, labels=None,
    )
    base.update(fields)
    return Event(**base)


def campaign(cid: str = "c", shift_days: float = 0, baseline: str | None = None, gmv_target: float | None = None) -> Campaign:
    start = datetime.fromtimestamp(T0, timezone.utc) + timedelta(days=shift_days)
    return Campaign(
        id=cid,
        name=cid,
        phases=Phases(
            preheat=Phase(start - timedelta(hours=2), start),
            burst=Phase(start, start + timedelta(hours=4)),
            wrapup=Phase(start + timedelta(hours=4), start + timedelta(hours=6)),
        ),
        targets=Targets(gmv=gmv_target),
        baseline=baseline,
        skus=[Sku(sku="A", name="Phone", category="phones", safety_stock=10, warning_level=20)],
    )


def test_totals_are_exact_decimals_and_funnel_steps():
    engine = Engine([campaign()])
    events = [ev("visit", T0 + i, anonymous_id=f"v{i % 40}", channel="tmall") for i in range(100)]
    events += [ev("product_view", T0 + i, anonymous_id=f"v{i}", sku="A") for i in range(68)]
    events += [ev("add_to_cart", T0 + i, anonymous_id=f"v{i}", sku="A") for i in range(24)]
    events += [ev("order_created", T0 + i, user_id=f"u{i}", order_id=f"o{i}", amount=Decimal("0.10")) for i in range(6)]
    events += [ev("order_paid", T0 + i, user_id=f"u{i}", order_id=f"o{i}", amount=Decimal("0.10"), sku="A") for i in range(3)]
    engine.apply(events)
    snap = engine.snapshot("c", T0 + 200)
    totals = snap["totals"]
    assert engine.states["c"].dims[""].totals[8] == Decimal("0.30")
    assert totals["uv"] == 68 + 6  # anonymous v0..v67 across visit/view/cart, plus six ordering users
    assert totals["buyers"] == 3 and totals["new_customers"] == 3
    steps = {s["stage"]: s["step_rate"] for s in snap["funnel"]}
    assert steps["product_view"] == 0.68 and steps["add_to_cart"] == 24 / 68 and steps["paid"] == 0.5
    assert snap["skus"][0]["units_sold"] == 3 and snap["skus"][0]["category"] == "phones"


def test_replayed_or_older_seq_is_ignored():
    engine = Engine()
    event = ev("visit", T0, anonymous_id="a")
    engine.apply([event])
    engine.apply([event])
    assert engine.snapshot("c", T0)["totals"]["visits"] == 1


def test_late_event_counts_in_its_own_minute_bucket():
    engine = Engine()
    engine.apply([ev("order_paid", T0 + 3600, order_id="o1", amount=Decimal(5))])
    engine.apply([ev("order_paid", T0 + 60, order_id="o2", amount=Decimal(7))])
    state = engine.states["c"]
    assert state.late_events == 1
    points = engine.series("c", "gmv_paid", 60, T0, T0 + 7200)[0]["points"]
    assert [p[1] for p in points] == [7.0, 5.0]
    assert points[0][0] == datetime.fromtimestamp(T0 + 60, timezone.utc).isoformat()


def test_stock_levels_adjustments_sales_and_eta():
    engine = Engine([campaign()])
    engine.apply(
        [
            ev("stock_level", T0, sku="A", quantity=100, warehouse="sh"),
            ev("stock_level", T0, sku="A", quantity=50, warehouse="bj"),
            ev("stock_adjust", T0 + 10, sku="A", quantity=20, warehouse="sh"),
            *[ev("order_paid", T0 + 60 + i, order_id=f"o{i}", amount=Decimal(1), sku="A", quantity=2) for i in range(30)],
            ev("stock_level", T0 - 100, sku="A", quantity=999, warehouse="sh"),
            ev("stock_adjust", T0 - 50, sku="A", quantity=-40, warehouse="sh"),
        ]
    )
    row = engine.skus("c", T0 + 120)[0]
    assert row["warehouses"] == {"bj": 50, "sh": 120}
    assert row["on_hand"] == 170 - 60
    assert row["sell_rate_per_min"] == 60 / 5
    assert row["sell_out_eta_min"] == 110 / 12
    assert row["sell_through"] == 60 / 170 and not row["sold_out"]

    engine.apply([ev("stock_level", T0 + 200, sku="A", quantity=5, warehouse="sh"), ev("stock_level", T0 + 200, sku="A", quantity=0, warehouse="bj")])
    engine.apply([ev("order_paid", T0 + 210, order_id="x", amount=Decimal(1), sku="A", quantity=7)])
    row = engine.skus("c", T0 + 220)[0]
    assert row["on_hand"] == -2 and row["oversold"] and row["sold_out"] and row["below_safety"]


def test_pacing_follows_the_baseline_curve():
    last_year = campaign("ly", shift_days=-365)
    this_year = campaign("ty", baseline="ly", gmv_target=1000)
    engine = Engine([last_year, this_year])
    ly_t0 = last_year.phases.burst.start.timestamp()
    engine.apply([ev("order_paid", ly_t0 + 60 * i, campaign="ly", order_id=f"l{i}", amount=Decimal(10)) for i in range(100)])
    engine.apply([ev("order_paid", T0 + 60 * i, campaign="ty", order_id=f"t{i}", amount=Decimal(15)) for i in range(25)])
    snap = engine.snapshot("ty", T0 + 25 * 60)
    assert snap["baseline"]["gmv_paid"] == 250
    assert snap["pacing"]["method"] == "baseline"
    assert snap["pacing"]["projected_final"] == 375 / 0.25
    assert snap["pacing"]["pct_complete"] == 0.375
    assert snap["phase"] == "burst" and snap["next_phase"]["phase"] == "wrapup"


def test_pacing_without_baseline_uses_the_phase_plan():
    engine = Engine([campaign(gmv_target=1000)])
    engine.apply([ev("order_paid", T0, order_id="o", amount=Decimal(300))])
    snap = engine.snapshot("c", T0)
    assert snap["pacing"]["method"] == "plan" and snap["pacing"]["expected_share_now"] == 0.3
    assert snap["pacing"]["projected_final"] == 1000


def test_spend_roi_and_named_metric_series():
    engine = Engine()
    engine.apply(
        [
            ev("metric", T0, metric="ad_spend", value=100.0, labels='{"channel": "douyin"}'),
            ev("metric", T0 + 1, metric="payment_success_rate", value=0.99),
            ev("metric", T0 + 61, metric="payment_success_rate", value=0.91),
            ev("order_paid", T0, order_id="o", amount=Decimal(500), channel="douyin"),
        ]
    )
    snap = engine.snapshot("c", T0 + 70)
    assert snap["totals"]["spend"] == 100.0 and snap["totals"]["roi"] == 5.0
    rate = next(m for m in snap["metrics"] if m["metric"] == "payment_success_rate")
    assert rate["last"] == 0.91
    series = engine.series("c", "metric:payment_success_rate", 60, T0 - 60, T0 + 120)
    assert [p[1] for p in series[0]["points"]] == [0.99, 0.91]


def test_state_size_is_bounded_by_keys_not_events():
    engine = Engine([campaign()])

    def burst(offset: int, n: int) -> list[Event]:
        return [
            ev(
                "order_paid", T0 + (i % 1800), channel=f"ch{i % 5}", user_id=f"u{offset + i}",
                order_id=f"o{offset + i}", amount=Decimal(1), sku=f"S{i % 50}",
            )
            for i in range(n)
        ]

    engine.apply(burst(0, 60_000))
    size_after_60k = len(pickle.dumps(engine.states))
    engine.apply(burst(60_000, 120_000))
    size_after_180k = len(pickle.dumps(engine.states))
    assert size_after_180k < size_after_60k * 1.05


def test_channels_past_the_limit_share_one_other_bucket_everywhere():
    engine = Engine([campaign()])
    channels = MAX_CHANNELS * 3
    engine.apply(
        [ev("visit", T0, channel=f"ch{i}", user_id=f"u{i}") for i in range(channels)]
        + [ev("order_paid", T0, channel=f"ch{i}", user_id=f"u{i}", order_id=f"o{i}", amount=Decimal(1)) for i in range(channels)]
    )
    state = engine.states["c"]
    for name, per_channel in (("visitors", state.visitors), ("buyers", state.buyers), ("new", state.new_customers)):
        assert len(per_channel) == MAX_CHANNELS + 2, name  # the total, MAX_CHANNELS channels and (other)
    assert state.visitors[OTHER].count() == channels - MAX_CHANNELS
    assert state.new_customers[OTHER] == channels - MAX_CHANNELS
    assert state.visitors[TOTAL].count() == channels
    assert len(state.keys("channel:")) == MAX_CHANNELS + 1


def test_distinct_counter_error_stays_under_one_percent():
    counter = DistinctCounter()
    for i in range(150_000):
        counter.add(f"visitor-{i}")
    assert not counter.exact
    assert abs(counter.count() - 150_000) / 150_000 < 0.01
