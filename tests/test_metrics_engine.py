"""The pure metrics engine: fed events and a clock, no database."""

import itertools
import pickle
import random
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest

from app.campaigns.model import Campaign, Phase, Phases, Sku, Targets
from app.metrics.engine import MAX_CHANNELS, NEVER, OTHER, TOTAL, Engine
from app.metrics.measures import INDEX, Event
from app.metrics.pacing import MIN_PROJECTION_ORDERS
from app.metrics.series import ITEM_SECONDS_KEPT, SECONDS_KEPT, Series
from app.metrics.visitors import EXACT_LIMIT, DistinctCounter

T0 = datetime(2026, 11, 11, 0, 0, tzinfo=timezone(timedelta(hours=8))).timestamp()
_seq = itertools.count(1)


def ev(type_: str, at: float, campaign: str = "c", **fields) -> Event:
    base = dict(
        seq=next(_seq),
        type=type_,
        occurred_at=at,
        campaign=campaign,
        channel=None,
        user_id=None,
        anonymous_id=None,
        order_id=None,
        sku=None,
        quantity=None,
        amount=None,
        warehouse=None,
        metric=None,
        value=None,
        labels=None,
    )
    base.update(fields)
    return Event(**base)


def campaign(
    cid: str = "c", shift_days: float = 0, baseline: str | None = None, gmv_target: float | None = None
) -> Campaign:
    start = datetime.fromtimestamp(T0, UTC) + timedelta(days=shift_days)
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
    events += [
        ev("order_paid", T0 + i, user_id=f"u{i}", order_id=f"o{i}", amount=Decimal("0.10"), sku="A") for i in range(3)
    ]
    engine.apply(events)
    snap = engine.snapshot("c", T0 + 200)
    totals = snap.totals
    assert engine.states["c"].dims[""].totals[8] == Decimal("0.30")
    assert totals.uv == 68 + 6  # anonymous v0..v67 across visit/view/cart, plus six ordering users
    assert totals.buyers == 3 and totals.new_customers == 3
    steps = {s.stage: s.step_rate for s in snap.funnel}
    assert steps["product_view"] == 0.68 and steps["add_to_cart"] == 24 / 68 and steps["paid"] == 0.5
    assert snap.skus[0].units_sold == 3 and snap.skus[0].category == "phones"


def test_snapshot_ratios_and_new_customers_against_an_earlier_baseline_buyer():
    last_year = campaign("ly", shift_days=-365)
    engine = Engine([last_year, campaign(baseline="ly")])
    ly_t0 = last_year.phases.burst.start.timestamp()
    engine.apply([ev("order_paid", ly_t0, campaign="ly", user_id="loyal", order_id="ly-1", amount=Decimal(80))])
    visitors = ["loyal", "u1", "u2", *(f"v{i}" for i in range(7))]
    engine.apply(
        [ev("visit", T0, user_id=who) for who in visitors]
        + [ev("page_view", T0 + i, user_id=visitors[i % 10]) for i in range(25)]
        + [
            ev("order_paid", T0 + 30, user_id="loyal", order_id="o1", amount=Decimal("100.50")),
            ev("order_paid", T0 + 31, user_id="u1", order_id="o2", amount=Decimal("199.50")),
            ev("order_paid", T0 + 32, user_id="u1", order_id="o3", amount=Decimal(300)),
            ev("order_paid", T0 + 33, user_id="u2", order_id="o4", amount=Decimal(400)),
            ev("refund", T0 + 40, user_id="u2", order_id="o4", amount=Decimal(400)),
        ]
    )
    totals = engine.snapshot("c", T0 + 60).totals
    assert totals.gmv_paid == 1000 and totals.orders_paid == 4
    assert totals.aov == 250.0, "paid GMV ÷ paid orders"
    assert totals.refund_rate == 0.25, "refunds ÷ paid orders"
    assert totals.uv == 10 and totals.pv == 25
    assert totals.uv_value == 100.0, "paid GMV ÷ UV"
    assert totals.buyers == 3 and totals.conversion_rate == 0.3, "distinct buyers ÷ UV"
    assert totals.new_customers == 2, "'loyal' paid in the baseline campaign, u1's second order is not new"
    assert totals.repeat_rate == 1 / 3
    assert engine.snapshot("ly", ly_t0 + 60).totals.new_customers == 1


def test_uv_counts_visitors_of_paid_orders_too_so_conversion_never_passes_100_percent():
    """README: UV counts the visitors of traffic and order events; a buyer whose only event is the payment
    (the payment backend reports it, the storefront's visit was never sent) is a visitor too."""
    engine = Engine([campaign()])
    engine.apply(
        [
            ev("visit", T0, user_id="browser"),
            ev("order_created", T0 + 1, user_id="orderer", order_id="o1", amount=Decimal(5)),
        ]
        + [
            ev("order_paid", T0 + 2, user_id=who, order_id=f"p-{who}", amount=Decimal(5))
            for who in ("orderer", "payer")
        ]
        + [
            ev("order_paid", T0 + 3, anonymous_id="guest", order_id="p-guest", amount=Decimal(5)),
            ev("order_paid", T0 + 4, order_id="p-nobody", amount=Decimal(5)),
        ]
    )
    totals = engine.snapshot("c", T0 + 60).totals
    assert totals.uv == 4, "browser, orderer, payer and the guest; a payment naming nobody is no visitor"
    assert totals.buyers == 3 and totals.conversion_rate == 3 / 4


def test_replayed_or_older_seq_is_ignored():
    engine = Engine([campaign()])
    event = ev("visit", T0, anonymous_id="a")
    engine.apply([event])
    engine.apply([event])
    assert engine.snapshot("c", T0).totals.visits == 1


def test_late_event_counts_in_its_own_minute_bucket():
    engine = Engine([campaign()])
    engine.apply([ev("order_paid", T0 + 3600, order_id="o1", amount=Decimal(5))])
    engine.apply([ev("order_paid", T0 + 60, order_id="o2", amount=Decimal(7))])
    state = engine.states["c"]
    assert state.late_events == 1
    points = engine.series("c", "gmv_paid", 60, T0, T0 + 7200)[0].points
    assert [p[1] for p in points] == [7.0, 5.0]
    assert points[0][0] == datetime.fromtimestamp(T0 + 60, UTC).isoformat()


def test_sku_and_category_series_keep_fewer_seconds_and_read_older_windows_from_minutes():
    """A catalog has thousands of SKUs: their second buckets last ITEM_SECONDS_KEPT, the total's an hour."""
    engine = Engine([campaign()])
    minute = int(T0) // 60 * 60
    engine.apply([ev("order_paid", minute + i, order_id=f"o{i}", amount=Decimal(1), sku="A") for i in range(10)])
    state = engine.states["c"]
    total, sku = state.dims[TOTAL], state.dims["sku:A"]
    assert sorted(sku.seconds) == sorted(total.seconds) == [minute + i for i in range(10)]
    later = minute + ITEM_SECONDS_KEPT + 120
    engine.apply([ev("visit", later, anonymous_id="v")])
    assert sku.seconds == {} and sorted(total.seconds) == [minute + i for i in range(10)] + [later]
    assert sku.minutes[minute // 60][INDEX["units_sold"]] == 10 and sku.totals[INDEX["units_sold"]] == 10
    # the second half of that minute: exact from the total's seconds, pro rata from the SKU's minute
    assert engine.window("c", "units_sold", minute + 30, minute + 60) == 0.0
    assert engine.window("c", "units_sold", minute + 30, minute + 60, by="sku", label="A") == 5.0
    assert engine.window("c", "units_sold", minute, minute + 60, by="sku", label="A") == 10.0, "whole minutes exact"
    recent = later - 5
    engine.apply([ev("order_paid", recent + i, order_id=f"r{i}", amount=Decimal(1), sku="A") for i in range(3)])
    assert engine.window("c", "units_sold", recent + 1, recent + 3, by="sku", label="A") == 2.0, "recent: exact"


@pytest.mark.parametrize("seed", range(5))
def test_a_window_is_exact_after_the_kept_seconds_and_pro_rata_only_in_its_edge_minutes_before(seed):
    rng = random.Random(seed)
    units = INDEX["units_sold"]
    for _ in range(400):
        series, truth, newest = Series(rng.choice([60, 90, 600])), Counter(), NEVER
        for second in sorted(rng.randrange(10_000, 11_000) for _ in range(rng.randrange(1, 80))):
            newest = max(newest, second)
            series.add(second, newest, [(units, 1)])
            truth[second] += 1
        series.prune_seconds(newest)
        start = rng.randrange(newest - 1100, newest + 2)
        end = rng.randrange(start + 1, newest + 3)
        got, exact = series.between(units, start, end, newest), sum(n for s, n in truth.items() if start <= s < end)
        cut = newest - series.seconds_kept + 1
        if start >= cut or (start % 60 == 0 and (end >= cut or end % 60 == 0)):
            assert got == pytest.approx(exact), (start, end, newest)
        else:
            edges = {start // 60} | ({(end - 1) // 60} if end <= cut else set())
            assert abs(got - exact) <= sum(n for s, n in truth.items() if s // 60 in edges) + 1e-9


def test_second_buckets_past_the_kept_hour_are_dropped_while_minutes_and_totals_stay():
    engine = Engine([campaign()])
    engine.apply([ev("order_paid", T0 + i, order_id=f"o{i}", amount=Decimal(i + 1)) for i in range(10)])
    engine.apply([ev("metric", T0 + i, metric="page_load_ms", value=900.0) for i in range(10)])
    total = engine.states["c"].dims[TOTAL]
    first_minute = list(total.minutes[int(T0) // 60])
    assert sorted(total.seconds) == [int(T0) + i for i in range(10)]

    newest = int(T0) + SECONDS_KEPT + 5
    engine.apply([ev("order_paid", newest, order_id="late-night", amount=Decimal(45))])
    kept = [int(T0) + i for i in range(5, 10)]
    assert sorted(total.seconds) == kept + [newest], "seconds more than SECONDS_KEPT behind the newest event are gone"
    assert sorted(engine.states["c"].metrics[("page_load_ms", ())].seconds) == kept
    assert total.minutes[int(T0) // 60] == first_minute
    assert total.totals[INDEX["gmv_paid"]] == 55 + 45 and total.totals[INDEX["orders_paid"]] == 11
    by_minute = engine.series("c", "gmv_paid", 60, T0, newest + 1)[0].points
    assert [p[1] for p in by_minute] == [55.0, 45.0], "the minute curve is intact"
    by_second = engine.series("c", "gmv_paid", 1, T0, newest + 1)[0].points
    assert [p[1] for p in by_second] == [6.0, 7.0, 8.0, 9.0, 10.0, 45.0]


def test_stock_levels_adjustments_sales_and_eta():
    engine = Engine([campaign()])
    engine.apply(
        [
            ev("stock_level", T0, sku="A", quantity=100, warehouse="sh"),
            ev("stock_level", T0, sku="A", quantity=50, warehouse="bj"),
            ev("stock_adjust", T0 + 10, sku="A", quantity=20, warehouse="sh"),
            *[
                ev("order_paid", T0 + 60 + i, order_id=f"o{i}", amount=Decimal(1), sku="A", quantity=2)
                for i in range(30)
            ],
            ev("stock_level", T0 - 100, sku="A", quantity=999, warehouse="sh"),
            ev("stock_adjust", T0 - 50, sku="A", quantity=-40, warehouse="sh"),
        ]
    )
    row = engine.skus("c", T0 + 120)[0]
    # the sales name no warehouse: they reduce the SKU (both counts were taken before them), no warehouse
    assert row.warehouses == {"bj": 50, "sh": 120} and row.unplaced_sold == 60
    assert row.on_hand == 170 - 60
    assert row.sell_rate_per_min == 60 / 5
    assert row.sell_out_eta_min == 110 / 12
    assert row.sell_through == 60 / 170 and not row.sold_out

    engine.apply(
        [
            ev("stock_level", T0 + 200, sku="A", quantity=5, warehouse="sh"),
            ev("stock_level", T0 + 200, sku="A", quantity=0, warehouse="bj"),
        ]
    )
    engine.apply([ev("order_paid", T0 + 210, order_id="x", amount=Decimal(1), sku="A", quantity=7)])
    row = engine.skus("c", T0 + 220)[0]
    assert row.on_hand == -2 and row.oversold and row.sold_out and row.below_safety


def sale(at: float, quantity: int, warehouse: str | None = None, type_: str = "order_paid") -> Event:
    return ev(type_, at, order_id=f"o{at}", amount=Decimal(1), sku="A", quantity=quantity, warehouse=warehouse)


def level(at: float, quantity: int, warehouse: str) -> Event:
    return ev("stock_level", at, sku="A", quantity=quantity, warehouse=warehouse)


def test_a_sale_naming_a_warehouse_counts_only_after_that_warehouses_own_snapshot():
    engine = Engine([campaign()])
    engine.apply([level(T0, 100, "A"), sale(T0 + 5, 10, "A"), level(T0 + 10, 50, "B")])
    row = engine.skus("c", T0 + 11)[0]
    assert row.warehouses == {"A": 90, "B": 50} and row.on_hand == 140  # not 150: A's sale is after A's count

    engine.apply([sale(T0 + 7, 4, "B"), sale(T0 + 10, 1, "B"), sale(T0 + 12, 3, "B")])
    row = engine.skus("c", T0 + 13)[0]
    assert row.warehouses == {"A": 90, "B": 46}  # B's count at T0+10 includes the sale at T0+7, not its own second's

    engine.apply([sale(T0 + 25, 6, "A"), level(T0 + 20, 70, "A"), sale(T0 + 15, 9, "A")])
    row = engine.skus("c", T0 + 26)[0]
    assert row.warehouses == {"A": 64, "B": 46}, "a count arriving late keeps the sales after it, drops those before"
    assert row.on_hand == 110 and row.unplaced_sold == 0


def test_a_sale_naming_no_warehouse_counts_after_the_oldest_snapshot_so_stock_errs_low():
    engine = Engine([campaign()])
    engine.apply([level(T0, 100, "A"), sale(T0 + 5, 10), level(T0 + 10, 50, "B")])
    row = engine.skus("c", T0 + 11)[0]
    assert row.warehouses == {"A": 100, "B": 50} and row.unplaced_sold == 10
    assert row.on_hand == 140, "the sale may be missing from A's count"

    engine.apply([level(T0 + 20, 95, "A"), sale(T0 + 15, 2)])
    row = engine.skus("c", T0 + 21)[0]
    assert row.unplaced_sold == 2 and row.on_hand == 95 + 50 - 2, "before every count now: only the T0+15 sale"

    engine.apply([level(T0 + 30, 48, "B")])
    assert engine.skus("c", T0 + 31)[0].on_hand == 95 + 48, "both counts are newer than every unplaced sale"


def test_sales_naming_a_warehouse_no_count_covers_are_unplaced_and_reset_by_the_next_count():
    engine = Engine([campaign()])
    engine.apply([sale(T0 + i, 1, "wh-sh") for i in range(10)] + [level(T0 + 20, 90, "default")])
    engine.apply([sale(T0 + 30 + i, 1, "wh-sh") for i in range(5)])
    row = engine.skus("c", T0 + 40)[0]
    assert row.on_hand == 85 and row.warehouses == {"default": 90} and row.unplaced_sold == 5
    engine.apply([level(T0 + 50, 85, "default")])
    assert engine.skus("c", T0 + 51)[0].on_hand == 85, "the recount includes them"


def test_stock_follows_the_campaigns_deduction_event_type():
    ordered = msgspec.structs.replace(campaign(), stock_deducted_on="order_created")
    events = [
        level(T0, 100, "A"),
        sale(T0 + 1, 5, "A", "order_created"),
        sale(T0 + 2, 3, "A"),
        sale(T0 + 3, 2, None, "order_created"),
    ]
    by_order = Engine([ordered])
    by_order.apply(events)
    by_payment = Engine([campaign()])
    by_payment.apply(events)
    assert by_order.skus("c", T0 + 4)[0].warehouses == {"A": 95} and by_order.skus("c", T0 + 4)[0].on_hand == 93
    assert by_payment.skus("c", T0 + 4)[0].warehouses == {"A": 97} and by_payment.skus("c", T0 + 4)[0].on_hand == 97


def test_warehouse_sales_an_hour_old_stay_counted_by_minute():
    engine = Engine([campaign()])
    engine.apply([level(T0, 100, "A"), sale(T0 + 61, 7, "A"), sale(T0 + 62, 1)])
    engine.apply([ev("visit", T0 + SECONDS_KEPT + 600, anonymous_id="v")])
    stock = engine.states["c"].stock["A"]
    assert not stock.warehouses["A"].sales.seconds and not stock.unplaced.seconds
    assert engine.skus("c", T0 + SECONDS_KEPT + 600)[0].on_hand == 92
    engine.apply([level(T0 + 90, 100, "A")])
    assert engine.skus("c", T0 + SECONDS_KEPT + 600)[0].on_hand == 92, (
        "to the minute: a count in the sales' minute keeps them"
    )
    engine.apply([level(T0 + 120, 100, "A")])
    assert engine.skus("c", T0 + SECONDS_KEPT + 600)[0].on_hand == 100


def test_pacing_follows_the_baseline_curve():
    last_year = campaign("ly", shift_days=-365)
    this_year = campaign("ty", baseline="ly", gmv_target=1000)
    engine = Engine([last_year, this_year])
    ly_t0 = last_year.phases.burst.start.timestamp()
    engine.apply(
        [ev("order_paid", ly_t0 + 60 * i, campaign="ly", order_id=f"l{i}", amount=Decimal(10)) for i in range(100)]
    )
    engine.apply(
        [ev("order_paid", T0 + 60 * i, campaign="ty", order_id=f"t{i}", amount=Decimal(15)) for i in range(25)]
    )
    assert MIN_PROJECTION_ORDERS <= 25
    snap = engine.snapshot("ty", T0 + 25 * 60)
    assert snap.baseline.gmv_paid == 250
    assert snap.pacing.method == "baseline"
    assert snap.pacing.projected_final == 375 / 0.25
    assert snap.pacing.pct_complete == 0.375
    assert snap.phase == "burst" and snap.next_phase.phase == "wrapup"


def test_pacing_without_baseline_uses_the_phase_plan():
    engine = Engine([campaign(gmv_target=1000)])
    engine.apply([ev("order_paid", T0, order_id="o", amount=Decimal(300))])
    assert engine.snapshot("c", T0).pacing.projected_final is None, "no projection of a whole night from one order"
    engine.apply([ev("order_paid", T0, order_id=f"o{i}", amount=Decimal(15)) for i in range(MIN_PROJECTION_ORDERS)])
    snap = engine.snapshot("c", T0)
    assert snap.pacing.method == "plan" and snap.pacing.expected_share_now == 0.3
    assert snap.pacing.projected_final == 2000


def test_spend_roi_and_named_metric_series():
    engine = Engine([campaign()])
    engine.apply(
        [
            ev("metric", T0, metric="ad_spend", value=100.0, labels='{"channel": "douyin"}'),
            ev("metric", T0 + 1, metric="payment_success_rate", value=0.99),
            ev("metric", T0 + 61, metric="payment_success_rate", value=0.91),
            ev("order_paid", T0, order_id="o", amount=Decimal(500), channel="douyin"),
        ]
    )
    snap = engine.snapshot("c", T0 + 70)
    assert snap.totals.spend == 100.0 and snap.totals.roi == 5.0
    rate = next(m for m in snap.metrics if m.metric == "payment_success_rate")
    assert rate.last == 0.91
    series = engine.series("c", "metric:payment_success_rate", 60, T0 - 60, T0 + 120)
    assert [p[1] for p in series[0].points] == [0.99, 0.91]


def test_state_size_is_bounded_by_keys_not_events():
    engine = Engine([campaign()])

    def burst(offset: int, n: int) -> list[Event]:
        return [
            ev(
                "order_paid",
                T0 + (i % 1800),
                channel=f"ch{i % 5}",
                user_id=f"u{offset + i}",
                order_id=f"o{offset + i}",
                amount=Decimal(1),
                sku=f"S{i % 50}",
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
        + [
            ev("order_paid", T0, channel=f"ch{i}", user_id=f"u{i}", order_id=f"o{i}", amount=Decimal(1))
            for i in range(channels)
        ]
    )
    state = engine.states["c"]
    for name, per_channel in (("visitors", state.visitors), ("buyers", state.buyers), ("new", state.new_customers)):
        assert len(per_channel) == MAX_CHANNELS + 2, name  # the total, MAX_CHANNELS channels and (other)
    assert state.visitors[OTHER].count() == channels - MAX_CHANNELS
    assert state.new_customers[OTHER] == channels - MAX_CHANNELS
    assert state.visitors[TOTAL].count() == channels
    assert len(state.keys("channel:")) == MAX_CHANNELS + 1
    assert state.capped == {"channel": 2 * (channels - MAX_CHANNELS)}, "counted per event that lost its key"


def test_distinct_counters_follow_the_channel_series_into_other():
    """A channel without its own series (past the limit) must not get its own visitor counter either."""
    engine = Engine([campaign()])
    engine.apply([ev("order_cancelled", T0, channel=f"c{i}", order_id=f"o{i}") for i in range(MAX_CHANNELS)])
    engine.apply([ev("visit", T0 + 1, channel=f"v{i}", user_id=f"u{i}") for i in range(50)])
    other = next(c for c in engine.snapshot("c", T0 + 2).channels if c.channel == OTHER)
    assert other.visits == 50 and other.uv == 50
    assert set(engine.states["c"].visitors) == {TOTAL, OTHER}


@pytest.mark.parametrize("size", [EXACT_LIMIT + 5_000, 150_000, 300_000])
@pytest.mark.parametrize("seed", ["a", "b", "c"])
def test_distinct_counter_error_stays_under_one_percent(size: int, seed: str):
    """Standard error 0.41%: about 98.5% of estimates fall within 1%; these fixed id sets all do."""
    counter = DistinctCounter()
    for i in range(size):
        counter.add(f"{seed}-visitor-{i}")
        if i % 3 == 0:
            counter.add(f"{seed}-visitor-{i // 2}")  # repeat visits must not count
    assert not counter.exact
    assert abs(counter.count() - size) / size < 0.01


def test_orders_per_checkout_is_a_window_ratio_rules_can_watch():
    engine = Engine([campaign()])
    engine.apply([ev("checkout", T0 + i, anonymous_id=f"v{i}") for i in range(40)])
    engine.apply([ev("order_created", T0 + i, user_id=f"u{i}", order_id=f"o{i}") for i in range(0, 40, 4)])
    assert engine.window("c", "order_rate", T0, T0 + 60) == 10 / 40
    assert engine.window("c", "order_rate", T0 + 60, T0 + 120) is None, "no checkouts: undefined, not zero"
