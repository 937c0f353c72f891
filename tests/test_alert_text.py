"""Alert texts and the shared formats they read in: ratios as percentages, money in 万/亿 or K/M/B, durations,
product names before SKU ids, chart axes in the room's units."""

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import websockets

from alerts.evaluation.lifecycle import Lifecycle, Observation
from alerts.evaluation.messages import Terms, compose_group, describe, product, value_units
from alerts.evaluation.metricview import METRIC_NAMES
from alerts.evaluation.rules import METRIC_UNITS, AnyRule, load_file, metric_unit
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
    (rules_dir / "pack.yaml").write_text(PRODUCT_RULES)
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
                "Aurora X1 phone (SKU-1001): 5,000 left (Emergency)",
            ], "each entry in its own moment"
            assert history[0]["reading"] == {"en": "100", "zh": "100"}
            [banner] = server.services.alerts.banner("double11-demo")
            assert banner.status == "resolved" and banner.acknowledged is None, "a resolved emergency is still news"
    finally:
        server.stop()

    restarted = start_server(dsn, **settings)
    try:
        async with httpx.AsyncClient(base_url=restarted.url, timeout=30) as http:
            [banner] = restarted.services.alerts.banner("double11-demo")
            assert banner.id == api["id"] and banner.severity == "emergency", "restored after a restart"
            url = restarted.url.replace("http://", "ws://") + f"{ws_url}?token={screen}"
            async with websockets.connect(url) as socket:
                snapshot = json.loads(await socket.recv())
            [past] = snapshot["resolved"]
            assert past["id"] == api["id"] and past["summary_zh"] == "极光X1手机 (SKU-1001)：剩余 5,000（紧急）"
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


def test_every_placeholder_of_the_shipped_rules_is_filled():
    for rule in PACK.rules:
        values = {key: 0.4567 if unit in ("ratio", "change") else 1234.0 for key, unit in value_units(rule).items()}
        labels = {**LABELS, **({rule.by: "SKU-1001"} if rule.by else {})}
        text = describe(rule, labels, {**values, "reference": 1.0}, Severity.WARNING, TERMS)
        for summary in (text.summary_en, text.summary_zh):
            assert "{" not in summary and "None" not in summary, (rule.name, summary)
            assert "0.457" not in summary, f"{rule.name}: a raw ratio in {summary!r}"
