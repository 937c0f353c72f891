"""The wall's charts without a browser: a target pace that only rises, whole-second ticks on the night's clock,
万/亿 axes, the night's window, the per-minute panel, alert markers and the most urgent SKUs first."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec

from alerts.evaluation.severity import Severity
from alerts.evaluation.views import LiveAlert
from app.campaigns.model import Campaign, Phase, Phases, Targets
from app.metrics.engine import Engine
from app.metrics.measures import Event
from app.metrics.snapshot import SkuRow
from dashboard import axes, curve, minute, panels
from dashboard.numbers import axis_tick

ZONE = timezone(timedelta(hours=8))
MIDNIGHT = datetime(2026, 11, 11, tzinfo=ZONE)
T0 = MIDNIGHT.timestamp()
LAST_YEAR = datetime(2025, 11, 11, tzinfo=ZONE)
TARGET = 1_000_000.0


def night(cid: str, midnight: datetime, baseline: str | None = None) -> Campaign:
    """A night like the demo's: a long pre-heat (the plan expects 30 % of the GMV by midnight), then the burst."""
    return Campaign(
        id=cid,
        name=cid,
        timezone="Asia/Shanghai",
        currency="CNY",
        phases=Phases(
            preheat=Phase(midnight - timedelta(days=10), midnight),
            burst=Phase(midnight, midnight + timedelta(days=1)),
            wrapup=Phase(midnight + timedelta(days=1), midnight + timedelta(days=3)),
        ),
        targets=Targets(gmv=TARGET),
        baseline=baseline,
    )


def paid(seq: int, campaign: str, at: float, amount: int) -> Event:
    fields = dict.fromkeys(
        ("channel", "user_id", "anonymous_id", "sku", "quantity", "warehouse", "metric", "value", "labels")
    )
    return Event(
        seq=seq,
        type="order_paid",
        occurred_at=at,
        campaign=campaign,
        order_id=f"{campaign}-{seq}",
        amount=Decimal(amount),
        **fields,
    )


def engine_with_last_year() -> Engine:
    """This year and last year's night, last year's orders from 20 minutes before its midnight to an hour after
    (ten times busier after midnight), this year's a few minutes either side of midnight."""
    engine = Engine([night("ly", LAST_YEAR), night("c", MIDNIGHT, baseline="ly")])
    ly = LAST_YEAR.timestamp()
    events = [paid(i + 1, "ly", ly + 60 * m, 100 if m < 0 else 1000) for i, m in enumerate(range(-20, 60))]
    events += [paid(1000 + i, "c", T0 + 30 * s, 500) for i, s in enumerate(range(-40, 40))]
    engine.apply(events)
    return engine


def test_the_target_pace_only_rises_across_midnight_and_keeps_what_it_drew():
    engine = engine_with_last_year()
    wall = T0 + 86400 * 30  # last year's night ended long ago: wholly loaded
    curves = [curve.gmv_curve(engine, "c", T0 + s, 0.0, "en", wall) for s in range(-600, 1800, 20)]
    for drawn in curves:
        pace = [p for p in drawn.pace if p is not None]
        assert drawn.pace_method == "baseline" and len(pace) == len(drawn.x)
        assert all(b >= a for a, b in zip(pace, pace[1:], strict=False)), "a cumulative target never falls"
    for before, after in zip(curves, curves[1:], strict=False):
        if before.start == after.start and before.bin_s == after.bin_s:
            closed = len(before.x) - 1
            assert after.pace[:closed] == before.pace[:closed], "points already drawn stay where they are"


def test_no_pace_until_last_year_is_loaded_the_plan_without_a_last_year_and_a_change_of_method_redraws():
    engine = engine_with_last_year()
    loading = curve.gmv_curve(engine, "c", T0 + 600, 0.0, "en", wall=LAST_YEAR.timestamp() + 600)
    loaded = curve.gmv_curve(engine, "c", T0 + 620, 0.0, "en", wall=T0 + 86400 * 30)
    assert loading.pace_method == "awaiting" and set(loading.pace) == {None}, "a partial last year would understate"
    assert loaded.pace_method == "baseline"
    assert curve.update(loading, loaded) is None
    alone = Engine([night("c", MIDNIGHT)])
    planned = curve.gmv_curve(alone, "c", T0 + 600, 0.0, "en", T0 + 600)
    assert planned.pace_method == "plan" and planned.pace[0] is not None and planned.pace[0] > 0.29 * TARGET, (
        "the plan expects the pre-heat's 30 % by midnight"
    )
    assert all(b >= a for a, b in zip(planned.pace, planned.pace[1:], strict=False))  # type: ignore[operator]


def test_the_curve_shows_the_night_from_just_before_the_burst_and_says_so():
    engine = engine_with_last_year()
    drawn = curve.gmv_curve(engine, "c", T0 + 1800, 0.0, "zh", T0 + 86400 * 30)
    assert drawn.start == T0 - curve.NIGHT_LEAD_S
    assert drawn.axes["xaxis"]["title"]["text"] == "自爆发期（11月11日 00:00）前 15 分钟起"
    assert drawn.axes["xaxis"]["range"] == ["2026-11-10T23:45:00", "2026-11-11T00:30:00"]
    before = curve.window(engine.campaigns["c"], T0 - 5 * 3600 - 1200)
    assert before == (T0 - 7 * 3600, None), "in the pre-heat, the latest hours from a whole hour"


def test_time_ticks_fall_on_whole_seconds_or_minutes_of_the_night_and_never_show_milliseconds():
    shanghai = ZoneInfo("Asia/Shanghai")
    for span in (0.5, 7, 90, 1800, 3 * 3600, 30 * 3600, 10 * 86400):
        axis = axes.time_axis(T0 - span, T0, shanghai, "zh", "")
        assert axis["dtick"] % 1000 == 0 and "%L" not in axis["tickformat"] and "%f" not in axis["tickformat"]
        assert axis["tick0"].endswith("T00:00:00"), "counted from the night's local midnight"
        assert span / (axis["dtick"] / 1000) <= axes.MAX_TIME_TICKS
    assert axes.time_axis(T0 - 30, T0, shanghai, "en", "")["tickformat"] == "%H:%M:%S"
    assert axes.time_axis(T0 - 3600, T0, shanghai, "en", "")["tickformat"] == "%H:%M"
    assert axes.time_axis(T0 - 10 * 86400, T0, shanghai, "zh", "")["tickformat"] == "%-m月%-d日"


def test_value_axes_read_in_wan_and_yi_in_chinese_and_k_m_b_in_english():
    zh = axes.value_axis(4_800_000, "zh", "CNY")
    assert zh["ticktext"] == ["¥0", "¥200万", "¥400万"] and zh["range"][1] > 4_800_000
    assert axes.value_axis(4_800_000, "en", "CNY")["ticktext"] == ["¥0", "¥2M", "¥4M"]
    assert axis_tick(150_000_000, "zh") == "1.5亿" and axis_tick(2_500, "en") == "2.5K"
    assert axis_tick(3_000_000_000, "en", "USD") == "$3B" and axis_tick(0, "zh", "CNY") == "¥0"
    assert [axes.nice_step(top) for top in (1, 7, 95, 4_800_000)] == [0.25, 2, 25, 2_000_000]


def _alert(severity: Severity, fired_at: float) -> LiveAlert:
    return LiveAlert(
        seq=None,
        id=f"a-{fired_at}",
        transition=None,
        rule="r",
        labels={},
        status="firing",
        severity=severity,
        previous_severity=None,
        fired_at=fired_at,
        resolved_at=None,
        flapping=False,
        values={},
        acknowledged=None,
        summary_en="s",
        summary_zh="s",
        runbook_en="",
        runbook_zh="",
        link="",
        silenced_by=[],
        inhibited_by=[],
    )


def test_alert_markers_sit_at_the_minute_each_alert_fired_on_both_charts():
    engine = engine_with_last_year()
    alerts = [_alert(Severity.EMERGENCY, T0 + 125), _alert(Severity.WARNING, T0 - 3 * 86400)]
    gmv_by_then = 500.0 * 61  # this year's orders up to 00:10, every 30 s from 23:40
    drawn = curve.gmv_curve(engine, "c", T0 + 600, gmv_by_then, "en", T0 + 86400 * 30, alerts)
    (mark,) = drawn.marks
    assert mark.x == "2026-11-11T00:02:00" and mark.severity == "emergency"
    assert mark.y == 500 * 44, "on the curve: this year's GMV by 00:02 (44 orders of ¥500 from 23:40)"
    figure = minute.figure(engine, "c", T0 + 600, "en", alerts)
    markers = figure["data"][2]
    assert markers["x"] == ["2026-11-11T00:02:30"] and markers["marker"]["symbol"] == ["diamond"]


def test_the_per_minute_panel_compares_each_complete_minute_with_last_years_and_reddens_a_drop():
    engine = engine_with_last_year()
    figure = minute.figure(engine, "c", T0 + 1500 + 25, "zh", [])
    bars, last_year = figure["data"][0], figure["data"][1]
    assert bars["x"][-1] == "2026-11-11T00:24:30", "the open minute (00:25) is left out"
    assert len(bars["x"]) == minute.WINDOW_MIN and last_year["y"][-1] == 1000
    assert bars["y"][-1] == 0 and bars["marker"]["color"][-1] == minute.DROP_COLOUR, "this year's orders stopped"
    assert bars["y"][-12] == 1000 and bars["marker"]["color"][-12] == minute.BAR_COLOUR, "as many as last year"
    assert figure["layout"]["yaxis"]["ticktext"] == ["¥0", "¥500", "¥1,000"]


def _sku(sku: str, on_hand: int, eta: float | None, **flags: bool) -> SkuRow:
    return SkuRow(
        sku=sku,
        name=sku,
        name_zh=None,
        category=None,
        safety_stock=10,
        warning_level=20,
        on_hand=on_hand,
        warehouses={},
        unplaced_sold=0,
        units_sold=5,
        product_views=0,
        add_to_cart=0,
        gmv_paid=0.0,
        sell_rate_per_min=1.0,
        sell_out_eta_min=eta,
        sell_out_at=None,
        sell_through=None,
        sold_out=flags.get("sold_out", False),
        oversold=flags.get("oversold", False),
        below_warning=flags.get("below_warning", False),
        below_safety=flags.get("below_safety", False),
    )


def test_inventory_lists_the_most_urgent_skus_first_and_counts_the_rest():
    rows = [_sku(f"ok-{i}", 500, 300.0 + i) for i in range(6)]
    rows += [
        _sku("low", 15, 15.0, below_warning=True),
        _sku("gone", 0, None, sold_out=True),
        _sku("critical", 5, 5.0, below_warning=True, below_safety=True),
        _sku("over", -3, None, sold_out=True, oversold=True),
    ]
    assert [r.sku for r in panels.by_urgency(rows)][:5] == ["over", "gone", "critical", "low", "ok-0"]
    snapshot = msgspec.structs.replace(Engine().snapshot("x", 0), skus=rows)
    shown = panels.inventory(snapshot, "zh")
    listed = [row.to_plotly_json()["props"].get("data-sku") for row in shown[1:-1]]
    assert listed == ["over", "gone", "critical", "low", "ok-0", "ok-1"] and len(listed) == panels.INVENTORY_ROWS
    assert shown[-1].children == "另有 4 款"
    assert panels.inventory(snapshot, "en")[-1].children == "+4 more"


def test_the_alert_panel_shows_the_most_severe_and_counts_the_rest():
    alerts = [_alert(Severity.REMINDER, T0 + i) for i in range(5)]
    feed = panels.alert_feed(alerts, T0 + 60, T0 + 60, "en")
    assert len(feed) == panels.ALERT_ROWS + 1 and feed[-1].children == "+2 more alerts"
