"""Alert texts and the shared formats they read in: ratios as percentages, money in 万/亿 or K/M/B, durations,
product names before SKU ids, chart axes in the room's units."""

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import websockets

from alerts.evaluation.evaluate import Evaluator
from alerts.evaluation.lifecycle import Lifecycle, Observation
from alerts.evaluation.messages import Terms, compose_group, describe, product, render, value_units
from alerts.evaluation.metricview import METRIC_NAMES
from alerts.evaluation.rules import METRIC_UNITS, AnyRule, StaticRule, load_file, metric_unit, parse
from alerts.evaluation.severity import Severity
from alerts.evaluation.views import LiveAlert
from app.core.quantities import axis_ticks, elapsed, figure, share, signed_share
from tests.conftest import create_key, start_server, wait_until
from tests.helpers import STOCK_RULES, live_campaigns, stock


def test_ratios_read_as_percentages_as_short_as_they_stay_exact():
    assert share(0.95) == "95%" and share(0.938) == "93.8%" and share(0.601) == "60.1%"
    assert share(0.0042) == "0.42%" and share(1.25) == "125%" and share(None) == "—"
    assert signed_share(-0.38) == "−38%" and signed_share(0.25) == "+25%" and signed_share(-0.045) == "−4.5%"


def test_each_unit_reads_in_the_rooms_language():
    assert figure(0.9472, "ratio", "zh") == "94.7%"
    assert figure(177_500, "money", "zh", "CNY") == "¥17.75万" and figure(177_500, "money", "en", "CNY") == "¥177.5K"
    assert figure(2.5e9, "money", "en", "USD") == "$2.50B" and figure(3.2e8, "money", "zh", "CNY") == "¥3.20亿"
    assert figure(1670, "count", "en") == "1,670" and figure(16_700, "count", "en") == "16.70K"
    assert figure(603, "count", "en") == "603"
    assert figure(0.0, "count", "zh") == "0"
    assert figure(-0.3, "change", "en") == "−30%"
    assert figure(156, "minutes", "zh") == "2小时36分" and figure(156, "minutes", "en") == "2 h 36 min"
    assert figure(3250.4, "number", "en") == "3,250" and figure(15.25, "number", "en") == "15.25"
    assert figure(None, "ratio", "en") == "—" and figure(float("nan"), "money", "en", "CNY") == "—"


def test_durations_count_seconds_in_each_language():
    assert elapsed(156, "zh") == "2分36秒" and elapsed(156, "en") == "2m 36s"
    assert elapsed(5, "zh") == "5秒" and elapsed(5, "en") == "5s"
    assert elapsed(3720, "zh") == "1小时02分" and elapsed(3720, "en") == "1h 02m"
    assert elapsed(2 * 86400 + 3 * 3600, "zh") == "2天3小时" and elapsed(-3, "en") == "0s"


def test_chart_axes_read_in_wan_and_yi_in_chinese_and_k_m_b_in_english():
    values, labels = axis_ticks(0, 5_000_000, "zh", "CNY")
    assert values == [0, 1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000]
    assert labels == ["¥0", "¥100万", "¥200万", "¥300万", "¥400万", "¥500万"]
    values, labels = axis_ticks(0, 230_000_000, "zh")
    assert values[-1] >= 230_000_000 and labels[1] == "5,000万" and labels[2] == "1亿" and "1.5亿" in labels
    assert axis_ticks(0, 12_500, "en")[1] == ["0", "2.5K", "5K", "7.5K", "10K", "12.5K"]
    assert axis_ticks(0, 0, "en")[1] == ["0", "0.2", "0.4", "0.6", "0.8", "1"]
    assert axis_ticks(0, float("nan"), "en") == ([], [])


PACK = load_file(Path(__file__).resolve().parent.parent / "rules" / "double11.yaml")
TERMS = Terms("CNY", {"SKU-1001": ("Aurora X1 phone", "极光X1手机")})
LABELS = {"campaign": "d11"}


def _rule(name: str) -> AnyRule:
    return next(r for r in PACK.rules if r.name == name)


def _text(name: str, values: dict[str, Any], labels: dict[str, str] = LABELS, severity: Severity = Severity.WARNING):
    return describe(_rule(name), labels, values, severity, TERMS)


def test_every_metric_a_rule_can_watch_declares_its_unit():
    assert set(METRIC_NAMES) <= set(METRIC_UNITS)
    assert metric_unit("metric:payment_success_rate") == "ratio" and metric_unit("metric:page_load_ms") == "number"
    assert metric_unit("metric:refund_amount") == "money" and metric_unit("gmv_paid") == "money"


def test_ratios_in_alert_texts_read_as_percentages():
    text = _text("payment_success_rate_low", {"value": 0.938, "threshold": 0.95})
    assert text.summary_zh == "支付成功率 93.8%（阈值 95%）"
    assert text.summary_en == "Payment success rate 93.8% (threshold 95%)"
    brushing = _text("brushing", {"top_buyer_share": 0.6012, "orders_paid": 58})
    assert brushing.summary_en == "Possible order brushing: the top-5 buyers hold 60.1% of paid orders"
    assert "前5名买家占已支付订单的 60.1%" in brushing.summary_zh
    outage = _text("payment_outage", {"orders_created": 40, "payment_rate": 0.125})
    assert outage.summary_zh.endswith("支付率仅 12.5%")
    pacing = _text("gmv_pacing", {"value": 0.7349, "threshold": 0.8})
    assert pacing.summary_en == "GMV is pacing to 73.5% of target"
    slow = _text("slow_pages", {"visits": 900, "visits_change": 0.62, "cart_rate_change": -0.41})
    assert slow.summary_en.startswith("Traffic +62% against last year while add-to-cart fell −41%")


def test_changes_money_and_counts_read_in_the_rooms_units():
    orders = _text("orders_below_last_year", {"value": -0.384, "reference": 120.0, "threshold": -0.3})
    assert orders.summary_en == "Orders −38% against the same minutes last year"
    gmv = _text("gmv_anomaly", {"value": 177_500.0, "expected": 420_000.0, "lower": 350_000.0, "upper": 1_234_567.0})
    assert gmv.summary_zh.startswith("每分钟支付金额 ¥17.75万，超出预期区间 ¥35.00万–¥123.5万")
    assert gmv.summary_en.startswith("Paid GMV ¥177.5K per minute is outside the expected ¥350.0K–¥1.23M")
    slow = _text("page_load_slow", {"value": 3250.4, "threshold": 3000.0})
    assert slow.summary_en == "Pages load in 3,250 ms (threshold 3,000 ms)"


def test_alerts_name_the_product_first_then_the_sku_id():
    labels = {**LABELS, "sku": "SKU-1001"}
    text = _text("stock_low", {"value": 0.0, "threshold": 0.0}, labels, Severity.EMERGENCY)
    assert text.summary_zh == "紧急：极光X1手机 (SKU-1001) 库存仅剩 0 件（阈值 0）"
    assert text.summary_en == "Emergency: Aurora X1 phone (SKU-1001) has 0 units on hand (threshold 0)"
    unknown = _text("stock_low", {"value": 1670.0, "threshold": 300.0}, {**LABELS, "sku": "SKU-9"})
    assert "SKU-9 库存仅剩 1,670 件" in unknown.summary_zh and "SKU-9 has 1,670 units" in unknown.summary_en
    assert product("SKU-1001", Terms(products={"SKU-1001": ("Aurora X1 phone", None)}), "zh") == (
        "Aurora X1 phone (SKU-1001)"
    )


def test_a_value_without_a_reading_reads_as_a_dash_never_none():
    text = _text("payment_success_rate_low", {"value": None, "threshold": None})
    assert text.summary_en == "Payment success rate — (threshold —)" and "None" not in text.summary_zh


def test_chat_messages_list_no_raw_values():
    text = _text("payment_success_rate_low", {"value": 0.9472, "threshold": 0.95})
    stored = msgspec.structs.replace(text, severity=Severity.WARNING)
    for language in ("zh", "en", "zh-en"):
        _, body = compose_group("firing", Severity.WARNING, "g", [(stored, True, False)], [], language, "")
        assert "value=" not in body and "0.9472" not in body and "94.7%" in body


PRODUCT_RULES = STOCK_RULES.replace('{en: "{sku}: {value} left', '{en: "{product}: {value} left').replace(
    'zh: "{sku}：剩余', 'zh: "{product}：剩余'
)
"""``STOCK_RULES`` naming the product: "极光X1手机 (SKU-1001)：剩余 100（警告）"."""
RESOLVING_RULES = PRODUCT_RULES.replace(
    "    runbook:",
    '    resolved: {en: "Resolved: {product} back to {value} (alert threshold {threshold})",'
    ' zh: "已恢复：{product} 回到 {value}（告警阈值 {threshold}）"}\n    runbook:',
).replace("      warning:", '      reminder: {op: "<", value: warning_level}\n      warning:')
"""``PRODUCT_RULES`` with a resolved wording naming its threshold, and a reminder tier: an alert fired at the warning
(threshold 300, SKU-1001's safety stock) recovers past the reminder's 600, which its resolution must not name."""
RECOVERED_ZH = "已恢复：极光X1手机 (SKU-1001) 回到 5,000（告警阈值 300）"


def test_an_evaluation_without_a_reading_keeps_the_alerts_last_values():
    life = Lifecycle()
    labels = {"campaign": "c"}
    [fired] = life.observe([Observation("r", labels, frozenset({"warning"}), frozenset(), {"value": 0.9})], 0, {})
    assert fired.values == {"value": 0.9} and fired.alert.fired_values == {"value": 0.9}
    life.observe([Observation("r", labels, frozenset({"warning"}), frozenset(), {"value": 0.7})], 1, {})
    no_data = Observation("r", labels, frozenset(), frozenset(Severity), {"value": None, "threshold": None})
    [resolved] = life.observe([no_data], 2, {})
    assert resolved.kind == "resolved" and resolved.values == {"value": 0.7}, "its last reading, never None"
    assert resolved.alert.fired_values == {"value": 0.9} and resolved.alert.peak == Severity.WARNING


async def _firing(http: httpx.AsyncClient, screen: str) -> list[dict[str, Any]]:
    return (await http.get("/v1/alerts", params={"token": screen})).json()


async def test_live_values_history_of_its_moment_and_a_resolved_emergency_awaiting_acknowledgment(dsn, tmp_path):
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "pack.yaml").write_text(RESOLVING_RULES)
    ingest, screen, operator = [await create_key(dsn, s) for s in ("ingest", "screen", "operator")]
    settings = {
        "WARROOM_RULES_DIR": str(rules_dir),
        "WARROOM_CAMPAIGNS_DIR": str(live_campaigns(tmp_path / "campaigns")),
    }
    ws_url = "/v1/alerts/stream"
    server = start_server(dsn, **settings)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

            async def post(*events: dict[str, Any]) -> None:
                response = await http.post("/v1/events", json={"events": list(events)}, headers={"X-API-Key": ingest})
                assert response.status_code == 202

            await post(stock("s1", 100))

            async def warning() -> bool:
                return len(await _firing(http, screen)) == 1

            await wait_until(warning, timeout=10)
            url = server.url.replace("http://", "ws://") + f"{ws_url}?token={screen}"
            async with websockets.connect(url) as socket:
                snapshot = json.loads(await socket.recv())
                [shown] = snapshot["alerts"]
                assert shown["summary_zh"] == "极光X1手机 (SKU-1001)：剩余 100（警告）"
                assert shown["fired_reading"] == shown["reading"] == {"en": "100", "zh": "100"}
                await post(stock("s2", 50))
                frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
                while frame["type"] != "values":
                    frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
                [now] = frame["alerts"]
                assert now["id"] == shown["id"] and now["values"]["value"] == 50 and now["reading"]["zh"] == "50"
                assert now["summary_en"] == "Aurora X1 phone (SKU-1001): 50 left (Warning)"
            [api] = await _firing(http, screen)
            assert api["values"]["value"] == 50 and api["fired_values"]["value"] == 100, "the wall's latest too"
            [held] = server.services.alerts.lifecycle.alerts.values()
            assert server.services.alerts.render(held).summary_en == now["summary_en"], "what the wall renders"

            await post(stock("s3", 0))

            async def emergency() -> bool:
                return (await _firing(http, screen))[0]["severity"] == "emergency"

            await wait_until(emergency, timeout=10)
            await post(stock("s4", 5000))

            async def resolved() -> bool:
                return await _firing(http, screen) == []

            await wait_until(resolved, timeout=10)
            history = (await http.get("/v1/alerts/history", params={"token": screen})).json()
            assert [h["kind"] for h in history] == ["firing", "escalated", "resolved"]
            assert [h["summary_en"] for h in history] == [
                "Aurora X1 phone (SKU-1001): 100 left (Warning)",
                "Aurora X1 phone (SKU-1001): 0 left (Emergency)",
                "Resolved: Aurora X1 phone (SKU-1001) back to 5,000 (alert threshold 300)",
            ], "each entry in its own moment, a resolution as a recovery with the threshold it fired at"
            assert history[2]["summary_zh"] == RECOVERED_ZH
            assert history[0]["reading"] == {"en": "100", "zh": "100"}
            [banner] = server.services.alerts.banner("double11-demo")
            assert banner.status == "resolved" and banner.acknowledged is None, "a resolved emergency is still news"
            assert banner.summary_zh == RECOVERED_ZH, "the banner words it as the history does"
            [stored] = (await http.get("/v1/alerts", params={"token": screen, "status": "resolved"})).json()
            assert stored["summary_zh"] == RECOVERED_ZH and stored["summary_en"] == history[2]["summary_en"]
    finally:
        server.stop()

    restarted = start_server(dsn, **settings)
    try:
        async with httpx.AsyncClient(base_url=restarted.url, timeout=30) as http:
            [banner] = restarted.services.alerts.banner("double11-demo")
            assert banner.id == api["id"] and banner.severity == "emergency", "restored after a restart"
            assert banner.summary_zh == RECOVERED_ZH, "loaded from the store, it still reads as a recovery"
            url = restarted.url.replace("http://", "ws://") + f"{ws_url}?token={screen}"
            async with websockets.connect(url) as socket:
                snapshot = json.loads(await socket.recv())
            [past] = snapshot["resolved"]
            assert past["id"] == api["id"] and past["summary_zh"] == RECOVERED_ZH
            async with websockets.connect(url.replace("?", "?after=0&")) as socket:
                told = [json.loads(await socket.recv()) for _ in range(3)]
            assert told[2]["kind"] == "resolved" and told[2]["summary_zh"] == RECOVERED_ZH, "the terminal's line"
            ack = await http.post(f"/v1/alerts/{api['id']}/ack", json={"by": "张三"}, headers={"X-API-Key": operator})
            assert ack.status_code == 200
            [banner] = restarted.services.alerts.banner("double11-demo")
            assert banner.acknowledged is not None and banner.acknowledged.by == "张三"
            assert banner.acknowledged.at is not None and abs(banner.acknowledged.at - time.time()) < 5
    finally:
        restarted.stop()


async def test_a_banner_follows_acknowledgments_made_through_another_server_and_deleted_rehearsals(dsn, db, tmp_path):
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "pack.yaml").write_text(PRODUCT_RULES)
    ingest, screen = await create_key(dsn, "ingest"), await create_key(dsn, "screen")
    settings = {
        "WARROOM_RULES_DIR": str(rules_dir),
        "WARROOM_CAMPAIGNS_DIR": str(live_campaigns(tmp_path / "campaigns")),
    }
    server = start_server(dsn, **settings)
    alerts = server.services.alerts
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

            async def banner_is(check: Callable[[list[LiveAlert]], bool]) -> None:
                async def holds() -> bool:
                    return check(alerts.banner("double11-demo"))

                await wait_until(holds, timeout=10)

            await http.post("/v1/events", json={"events": [stock("s1", 0)]}, headers={"X-API-Key": ingest})
            await banner_is(lambda shown: len(shown) == 1 and shown[0].status == "firing")
            await http.post("/v1/events", json={"events": [stock("s2", 5000)]}, headers={"X-API-Key": ingest})
            await banner_is(lambda shown: len(shown) == 1 and shown[0].status == "resolved")
            await db.execute("UPDATE alerts SET ack_by = 'other-server', ack_at = now()")
            await banner_is(
                lambda shown: shown[0].acknowledged is not None and shown[0].acknowledged.by == "other-server"
            )
            await db.execute("DELETE FROM alert_transitions")
            await db.execute("DELETE FROM alerts")
            await banner_is(lambda shown: shown == [])
            assert (await http.get("/v1/alerts", params={"token": screen})).json() == []
    finally:
        server.stop()


SAMPLE = {"ratio": 0.4567, "change": -0.0456}
"""Values of the placeholder test, by unit (1234 for the others): none may show raw."""


def _resolution(rule: AnyRule) -> dict[str, Any]:
    """Values as the evaluation leaves them when an alert resolves: a static rule's change back within its limits is
    too small to be significant (``value`` None, its ``raw`` and ``reference`` kept), every other value read."""
    values = {key: SAMPLE.get(unit, 1234.0) for key, unit in value_units(rule).items() if key != "change_pct"}
    if isinstance(rule, StaticRule) and rule.change is not None:
        values.update(value=None, raw=1180.0, reference=1234.0)
    elif isinstance(rule, StaticRule):
        values["reference"] = None
    return values


def test_every_placeholder_of_the_shipped_rules_is_filled_firing_and_resolved_in_both_languages():
    for rule in PACK.rules:
        values = {key: SAMPLE.get(unit, 1234.0) for key, unit in value_units(rule).items()}
        labels = {**LABELS, **({rule.by: "SKU-1001"} if rule.by else {})}
        firing = describe(rule, labels, {**values, "reference": 1.0}, Severity.WARNING, TERMS)
        resolved = describe(rule, labels, _resolution(rule), Severity.EMERGENCY, TERMS, True, values)
        for summary in (firing.summary_en, firing.summary_zh, resolved.summary_en, resolved.summary_zh):
            assert "{" not in summary and "}" not in summary and "None" not in summary, (rule.name, summary)
            assert "0.457" not in summary and "0.046" not in summary, f"{rule.name}: a raw ratio in {summary!r}"
            assert "unknown" not in summary and "未知" not in summary, (rule.name, summary)
        assert resolved.summary_zh.startswith("已恢复："), resolved.summary_zh
        assert resolved.summary_en.startswith("Resolved: "), resolved.summary_en
        for emergency_words in ("紧急", "仅剩", "Emergency", "only", "outside", "超出", "stopped", "骤停"):
            assert emergency_words not in resolved.summary_zh + resolved.summary_en, (rule.name, resolved)


def _resolved(name: str, values: dict[str, Any], fired: dict[str, Any], labels: dict[str, str] = LABELS):
    return describe(_rule(name), labels, values, Severity.EMERGENCY, TERMS, True, fired)


def test_a_resolved_alert_reads_as_a_recovery_with_the_threshold_it_fired_at():
    sku = {**LABELS, "sku": "SKU-1001"}
    stock_low = _resolved("stock_low", {"value": 1200.0, "threshold": 600.0}, {"value": 0.0, "threshold": 300.0}, sku)
    assert stock_low.summary_zh == "已恢复：极光X1手机 (SKU-1001) 库存回到 1,200 件（告警阈值 300）"
    assert (
        stock_low.summary_en
        == "Resolved: Aurora X1 phone (SKU-1001) stock is back to 1,200 units (alert threshold 300)"
    )
    orders = _resolved(
        "orders_below_last_year",
        {"value": None, "raw": 96.0, "reference": 100.0, "threshold": -0.3},
        {"value": -0.85, "raw": 15.0, "reference": 100.0, "threshold": -0.8},
    )
    assert orders.summary_zh == "已恢复：下单量较去年同期 −4%（告警阈值 −80%）"
    assert orders.summary_en == "Resolved: orders −4% against the same minutes last year (alert at −80%)"
    rate = _resolved("payment_success_rate_low", {"value": 0.972, "threshold": 0.95}, {"value": 0.71, "threshold": 0.8})
    assert rate.summary_zh == "已恢复：支付成功率回到 97.2%（告警阈值 80%）"
    gmv = _resolved("gmv_anomaly", {"value": 5_000.0, "lower": 4_000.0, "upper": 9_000.0}, {"value": 100.0})
    assert gmv.summary_en == "Resolved: paid GMV ¥5.00K per minute (expected ¥4.00K–¥9.00K)"
    slow = _resolved("slow_pages", {"visits": 900, "visits_change": 0.21, "cart_rate_change": -0.04}, {})
    assert slow.summary_zh == "已恢复：加购率较去年同期 −4%，流量较去年同期 +21%"


def test_a_recovery_still_past_its_threshold_says_why_it_ended():
    """The demo's sellout: orders per checkout resolved at −51% against an alert at −35%, as the change stopped
    being significant on few checkouts; the recovery says so rather than reading as if the metric came back."""
    inconclusive = {"value": None, "raw": 0.49, "reference": 1.0, "threshold": -0.15}
    fired = {"value": -0.54, "raw": 0.46, "reference": 1.0, "threshold": -0.35}
    checkout = describe(_rule("orders_per_checkout_drop"), LABELS, inconclusive, Severity.WARNING, TERMS, True, fired)
    assert checkout.summary_zh == (
        "已恢复：结算转化为订单的比例较去年同期 −51%（告警阈值 −35%）（读数仍过阈值，但量太少或变化不显著，不再告警）"
    )
    assert checkout.summary_en.endswith(
        "(alert at −35%) (still past it, but on too few events or no longer significant)"
    )
    back = {"value": None, "raw": 0.9, "reference": 1.0, "threshold": -0.15}
    recovered = describe(_rule("orders_per_checkout_drop"), LABELS, back, Severity.WARNING, TERMS, True, fired)
    assert recovered.summary_zh == "已恢复：结算转化为订单的比例较去年同期 −10%（告警阈值 −35%）"


def test_a_rule_without_a_resolved_wording_reads_resolved_before_its_summary():
    pack = parse(STOCK_RULES.replace('"{sku}: {value} left ({severity})"', '"{sku}: {value} left"'))
    [rule] = pack.rules
    labels = {**LABELS, "sku": "SKU-1001"}
    text = describe(rule, labels, {"value": 900.0}, Severity.EMERGENCY, TERMS, True, {"value": 0.0})
    assert text.summary_en == "Resolved: SKU-1001: 900 left", "no severity named: the state before the summary"
    assert text.summary_zh == "SKU-1001：剩余 900（已恢复）", "its severity's place names the state"
    unknown = render("{sku} {nothing} {change_pct}", labels, {"value": 1.0}, Severity.WARNING, "en")
    assert unknown == "SKU-1001 unknown unknown", "a placeholder without a value says so in words"
    assert render("{nothing}", labels, {}, Severity.WARNING, "zh") == "未知"


def test_a_change_that_recovers_is_still_said_as_the_evaluation_leaves_it():
    """Orders back within 4% of last year resolve an orders_below_last_year alert; the evaluation then holds no
    significant change (``value`` None), and the resolution still says how far orders are from last year's."""
    rule = _rule("orders_below_last_year")
    view = _OrdersView(now=1200.0, orders=10.0, last_year=100.0)
    life = Lifecycle()
    [fired] = life.observe(Evaluator([rule]).evaluate(view), view.now, {})
    view.now, view.orders = 1260.0, 96.0
    [resolved] = life.observe(Evaluator([rule]).evaluate(view), view.now, {})
    assert fired.kind == "firing" and resolved.kind == "resolved" and resolved.values["value"] is None
    text = describe(rule, resolved.alert.labels, resolved.values, resolved.severity, TERMS, True, fired.values)
    assert text.summary_zh == "已恢复：下单量较去年同期 −4%（告警阈值 −80%）"
    assert text.summary_en == "Resolved: orders −4% against the same minutes last year (alert at −80%)"


@dataclass
class _OrdersView:
    """A campaign whose orders over any window are ``orders`` against last year's ``last_year``."""

    now: float
    orders: float
    last_year: float

    def campaigns(self) -> list[str]:
        return ["d11"]

    def labels(self, campaign: str, by: str) -> list[str]:
        return []

    def value(self, campaign: str, metric: str, start: float, end: float, by: str | None, label: str | None) -> float:
        return self.orders

    def baseline(
        self, campaign: str, metric: str, start: float, end: float, by: str | None, label: str | None
    ) -> float:
        return self.last_year

    def attribute(self, campaign: str, sku: str, name: str) -> float | None:
        return None

    def growth(self, campaign: str, metric: str) -> float | None:
        return None

    def data_since(self, campaign: str) -> float | None:
        return 0.0
