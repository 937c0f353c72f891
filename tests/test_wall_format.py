"""The wall's pure parts: number formats, KPI derivation, the GMV curve and its patches, page and access rules."""

import ipaddress
from pathlib import Path
from typing import Any

import msgspec
import pytest

from alerts.evaluation.severity import Severity
from alerts.evaluation.views import ACKNOWLEDGED_NEWS_S, AckRecord, LiveAlert, Reading
from app.core.settings import Settings, SettingsError
from app.metrics.engine import Engine
from app.metrics.measures import MEASURES
from app.metrics.snapshot import ChannelRow, FunnelStage, Measures, Snapshot
from dashboard import curve, i18n, panels
from dashboard.access import allowed_address, is_wall_path
from dashboard.kpis import baseline_values, tiles
from dashboard.numbers import age, column, compact, countdown, duration, money, percent, signed_percent
from dashboard.stream import Page, page_from_url


def test_large_numbers_use_wan_and_yi_in_chinese_and_k_m_b_in_english():
    assert compact(9_999, "zh") == "9,999"
    assert compact(12_345, "zh") == "1.23万"
    assert compact(1_234_567, "zh") == "123.5万"
    assert compact(123_456_789, "zh") == "1.23亿"
    assert compact(12_345, "en") == "12.35K"
    assert compact(1_234_567, "en") == "1.23M"
    assert compact(2_500_000_000, "en") == "2.50B"
    assert compact(None, "en") == "—"


def test_money_uses_the_campaign_currency():
    assert money(1_398_000, "CNY", "zh") == "¥139.8万"
    assert money(1_398_000, "USD", "en") == "$1.40M"
    assert money(-500, "EUR", "en") == "−€500"
    assert money(1200, "CHF", "en") == "1.20K CHF"


def test_percentages_changes_and_durations():
    assert percent(0.1234) == "12.3%" and percent(None) == "—"
    assert signed_percent(0.05) == "+5.0%" and signed_percent(-0.25) == "−25.0%"
    assert duration(0.5, "en") == "<1 min" and duration(12.9, "zh") == "12分钟"
    assert duration(125, "en") == "2 h 05 min" and duration(125, "zh") == "2小时05分"
    assert duration(3 * 1440 + 240, "zh") == "3天4小时"
    assert countdown(3725, "en") == "01:02:05" and countdown(90_000, "zh") == "1天 01:00:00"
    assert age(35, "en") == "35s" and age(4 * 60, "zh") == "4分钟"


def _snapshot(**parts: object) -> Snapshot:
    """An empty campaign's snapshot with the given parts replaced."""
    return msgspec.structs.replace(Engine().snapshot("c", 0), **parts)


def test_kpi_tiles_compare_like_with_like_against_the_baseline():
    empty = Engine().snapshot("c", 0)
    snapshot = _snapshot(
        currency="CNY",
        totals=msgspec.structs.replace(
            empty.totals,
            gmv_paid=300.0,
            orders_paid=3,
            orders_created=4,
            visits=100,
            uv=80,
            payment_rate=0.75,
            aov=100.0,
            conversion_rate=0.0375,
            uv_value=3.75,
            new_customers=2,
        ),
        pacing=msgspec.structs.replace(empty.pacing, target=1000.0, pct_complete=0.3, projected_final=900.0),
        baseline=Measures(
            **{**dict.fromkeys(MEASURES, 0), "gmv_paid": 200.0, "orders_paid": 2, "orders_created": 2, "visits": 50}
        ),
    )
    by_key = {t.key: t for t in tiles(snapshot, "en")}
    assert (
        by_key["gmv_paid"].value == "¥300"
        and "30.0%" in by_key["gmv_paid"].detail
        and "¥900" in by_key["gmv_paid"].detail
    )
    assert by_key["gmv_paid"].change == 0.5
    assert by_key["uv"].change == 1.0, "UV is compared through visits on both sides"
    assert by_key["conversion_rate"].change == (3 / 100) / (2 / 50) - 1
    assert by_key["new_customers"].change is None and by_key["new_customers"].change_text == "—"
    assert baseline_values(None)["aov"] is None


def test_curve_bins_grow_with_the_span_and_use_seconds_only_while_they_are_kept():
    assert curve.bin_width(60) == 1
    assert curve.bin_width(1200) == 5
    assert curve.bin_width(3500) >= 60, "seconds are kept for the last hour only"
    assert curve.bin_width(11 * 86400) == 3600
    assert curve.bin_ends(0, 25, 10) == [10, 20, 25]


def test_cumulative_counts_an_open_bucket_pro_rata():
    points = [(0.0, 60.0), (60.0, 120.0)]
    assert curve.cumulative_at(points, 10.0, 60, [30, 60, 90, 200]) == [40.0, 70.0, 130.0, 190.0]


def test_a_curve_that_only_grew_is_sent_as_a_patch():
    before = curve.Curve(0, 10, ["a", "b"], [1.0, 2.0], [1.0, 2.0], [None, None])
    after = curve.Curve(0, 10, ["a", "b2", "c"], [1.0, 3.0, 4.0], [1.0, 2.5, 3.0], [None, None, None])
    patch = curve.update(before, after)
    assert patch is not None
    operations = patch.to_plotly_json()["operations"]
    assert {"operation": "Assign", "location": ["data", 0, "y", 1], "params": {"value": 3.0}} in operations
    assert {"operation": "Extend", "location": ["data", 0, "y"], "params": {"value": [4.0]}} in operations
    rebinned = curve.Curve(0, 60, ["a"], [1.0], [None], [None])
    assert curve.update(before, rebinned) is None and curve.update(None, after) is None


def test_the_page_names_campaign_and_language():
    assert page_from_url("/wall/d11", "?lang=en-US", "zh", [], "default", []) == Page("d11", "en")
    assert page_from_url("/wall/", "", "zh", ["a", "b"], "b", []) == Page("b", "zh")
    assert page_from_url("/wall", "?lang=fr", "en", ["a", "b"], "default", ["b"]) == Page("b", "en")


def test_allow_list_and_wall_paths():
    networks = (ipaddress.ip_network("10.0.5.0/24"),)
    assert allowed_address("10.0.5.7", networks) and not allowed_address("10.0.6.7", networks)
    assert not allowed_address("testclient", networks) and not allowed_address("10.0.5.7", ())
    assert is_wall_path("/wall") and is_wall_path("/wall/_dash-layout") and not is_wall_path("/walls")


def _alert(
    alert_id: str,
    severity: str,
    summary: str,
    fired_at: float,
    acknowledged: AckRecord | None,
    status: str = "firing",
    readings: tuple[Reading | None, Reading | None] = (None, None),
) -> LiveAlert:
    return LiveAlert(
        seq=None,
        id=alert_id,
        transition=None,
        rule="rule",
        labels={},
        status=status,
        severity=Severity(severity),
        previous_severity=None,
        fired_at=fired_at,
        resolved_at=None,
        flapping=False,
        values={},
        acknowledged=acknowledged,
        summary_en=summary,
        summary_zh=summary,
        runbook_en="",
        runbook_zh="",
        link="",
        silenced_by=[],
        inhibited_by=[],
        timezone="Asia/Shanghai",
        reading=readings[0],
        fired_reading=readings[1],
    )


def _props(items: list[Any], name: str) -> list[Any]:
    return [i.to_plotly_json()["props"].get(name) for i in items]


def test_the_banner_keeps_an_emergency_until_acknowledged_then_says_who_and_when_for_a_while():
    acked_at = 1_700_000_000.0  # 06:13:20 in Shanghai
    alerts = [
        _alert("1", "emergency", "payments down", 10, None),
        _alert("2", "emergency", "stock out", 20, AckRecord(by="ops", at=acked_at, comment=None)),
        _alert("3", "reminder", "pacing", 30, None),
        _alert("4", "emergency", "provider down", 5, None, status="resolved"),
    ]
    items, css = panels.banner(alerts, acked_at + 10, "en")
    assert css == "banner" and _props(items[:-1], "data-alert") == ["1", "2"], "firing, unacknowledged first"
    more, hint = items[-1].children
    assert more.children == "+1 more" and hint.children == "act now and acknowledge"
    texts = {i.to_plotly_json()["props"]["data-alert"]: i.children[-1] for i in items[:-1]}
    assert texts["2"].children == "acknowledged by ops at 06:13:20"
    assert texts["1"] is None
    [resolved, _] = panels.banner(alerts[2:], acked_at + 10, "en")[0]
    assert resolved.children[-1].children == "resolved, not yet acknowledged", "a resolved emergency is still news"
    zh, _ = panels.banner(alerts[1:2], acked_at + 10, "zh")
    assert zh[0].children[-1].children == "已确认：ops 06:13:20" and len(zh) == 1, "no hint once all are acknowledged"
    later, css = panels.banner(alerts, acked_at + ACKNOWLEDGED_NEWS_S, "en")
    assert _props(later[:-1], "data-alert") == ["1", "4"], "an acknowledged one leaves after the named delay"
    assert panels.banner(alerts[1:3], acked_at + ACKNOWLEDGED_NEWS_S, "en") == ([], "banner hidden")
    assert panels.banner([_alert("5", "emergency", "x", 5, AckRecord("ops", None, None))], 0, "en")[1] == (
        "banner hidden"
    )


def test_the_banner_names_two_emergencies_firing_before_resolved_newest_first_and_counts_the_rest():
    alerts = [
        _alert("old-firing", "emergency", "a", 10, None),
        _alert("new-resolved", "emergency", "b", 40, None, status="resolved"),
        _alert("new-firing", "emergency", "c", 30, None),
        _alert("old-resolved", "emergency", "d", 20, None, status="resolved"),
    ]
    for lang, more in (("en", "+2 more"), ("zh", "另有 2 条")):
        items, _ = panels.banner(alerts, 0, lang)
        assert _props(items[:-1], "data-alert") == ["new-firing", "old-firing"]
        assert items[-1].children[0].children == more and _props(items[-1].children[:1], "data-more") == ["2"]
    items, _ = panels.banner(alerts[1::2], 0, "en")
    assert _props(items[:-1], "data-alert") == ["new-resolved", "old-resolved"], "resolved ones newest first too"
    assert [part.children for part in items[-1].children] == ["act now and acknowledge"], "nothing more to count"


def test_every_alert_row_says_whether_it_is_acknowledged_and_what_it_fired_at(monkeypatch):
    monkeypatch.setattr(panels, "ALERT_ROWS", 3)  # the rows' content, whatever room the panel has
    readings = (Reading(en="72.6%", zh="72.6%"), Reading(en="93.8%", zh="93.8%"))
    alerts = [
        _alert("1", "emergency", "payments down", 10, None, readings=readings),
        _alert("2", "emergency", "stock out", 20, AckRecord(by="ops", at=1_700_000_000.0, comment=None)),
        _alert("3", "reminder", "pacing", 30, None),
    ]
    feed = panels.alert_feed(alerts, 40, 40, "zh")
    assert _props(feed, "data-alert") == ["2", "1", "3"]
    acks = {row.to_plotly_json()["props"]["data-alert"]: row.children[3] for row in feed}
    assert acks["2"].children == "已确认：ops 06:13:20" and acks["1"].children == "未确认"
    assert acks["1"].to_plotly_json()["props"]["data-acknowledged"] == "false"
    summary = {row.to_plotly_json()["props"]["data-alert"]: row.children[2].children for row in feed}
    assert summary["1"][0] == "payments down" and summary["1"][1].children == " · 触发时 93.8%"
    assert summary["3"] == ["pacing"], "no value at firing without one"
    english = panels.alert_feed(alerts, 40, 40, "en")
    assert english[1].children[2].children[1].children == " · when fired: 93.8%"


def test_the_wall_and_the_on_call_page_word_the_value_an_alert_fired_at_alike():
    script = (Path(__file__).resolve().parent.parent / "app" / "api" / "static" / "oncall.js").read_text()
    for lang in ("zh", "en"):
        words = i18n.text("at_fire", lang, value="").strip()
        assert f'at_fire: "{words}"' in script, f"the on-call page's {lang} words for {words!r}"


def test_a_funnel_step_below_last_year_is_highlighted():
    snapshot = _snapshot(
        funnel=[
            FunnelStage(
                stage="visit",
                name_zh="访问",
                count=100,
                step_rate=None,
                benchmark=None,
                baseline_step_rate=None,
                below_baseline=False,
            ),
            FunnelStage(
                stage="product_view",
                name_zh="浏览商品详情",
                count=40,
                step_rate=0.4,
                benchmark=0.68,
                baseline_step_rate=0.6,
                below_baseline=True,
            ),
        ]
    )
    rows = panels.funnel(snapshot, "en")
    assert [r.className for r in rows] == ["funnel-row", "funnel-row below"]


def test_wall_settings_are_validated():
    settings = Settings.from_env({"WARROOM_WALL_ALLOW": "10.0.5.0/24, 192.168.1.20", "WARROOM_WALL_LANGUAGE": "en"})
    assert [str(n) for n in settings.wall_allow] == [
        "10.0.5.0/24",
        "192.168.1.20/32",
    ] and settings.wall_language == "en"
    for name, value in (("WARROOM_WALL_ALLOW", "10.0.5.0/33"), ("WARROOM_WALL_LANGUAGE", "fr")):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: value})


def test_one_format_per_column_and_a_channel_row_only_with_data():
    assert column([1670, 603, None], "en") == ["1,670", "603", "—"]
    assert column([1_234_567, 603], "zh") == ["123.5万", "0.1万"] and column([2_500_000, 40_000], "en") == [
        "2.50M",
        "0.04M",
    ]

    def channel(name: str, gmv: float, visits: float, spend: float = 0.0) -> ChannelRow:
        return ChannelRow(name, gmv, 0.0, 0, None, visits, spend, None)

    snapshot = _snapshot(
        currency="CNY",
        channels=[
            channel("tmall", 500.0, 20),
            channel("(none)", 0.0, 0),
            channel("app", 0.0, 9),
            channel("web", 0.0, 0, spend=120.0),
        ],
    )
    rows = panels.channels(snapshot, "zh")
    assert [r.to_plotly_json()["props"]["data-channel"] for r in rows] == ["tmall", "app"], (
        "no empty unknown row, and none for ad spend alone (the panel shows GMV and conversion)"
    )
    assert panels.channels(_snapshot(channels=[channel("(none)", 0.0, 0)]), "en")[0].className == "empty"


def test_the_header_reads_the_date_in_the_rooms_language():
    snapshot = _snapshot(timezone="Asia/Shanghai")
    assert panels.header(snapshot, 1_700_000_000, "zh")["wall-zone"] == "2023年11月15日 CST"
    assert panels.header(snapshot, 1_700_000_000, "en")["wall-zone"] == "2023-11-15 CST"
