"""The wall says what its numbers leave out: keys past a limit and amounts in a currency with no rate."""

from decimal import Decimal

from app.metrics.engine import Engine
from dashboard import panels
from tests.helpers import currency_order, shop_with_rates


def test_the_header_notice_names_key_limits_and_unconverted_currencies_in_both_languages():
    engine = Engine([shop_with_rates()])
    engine.apply([currency_order(1, "order_paid", "1000", "JPY"), currency_order(2, "order_paid", "5", "CNY")])
    engine.states["shop"].capped["sku"] = 1234
    snapshot = engine.snapshot("shop", 0)
    assert (
        panels.notice(snapshot, "en")
        == "▲ SKUs past the 20,000 limit: 1.23K events not tracked apart · no JPY rate: ¥1.00K (1 events) not in GMV"
    )
    assert (
        panels.notice(snapshot, "zh")
        == "▲ 商品超过20,000个上限：1,234条事件未单独统计 · JPY无汇率：¥1,000（1条）未计入GMV"
    )
    assert engine.states["shop"].dims[""].totals[8] == Decimal(5)


def test_no_notice_when_nothing_is_left_out():
    engine = Engine([shop_with_rates()])
    engine.apply([currency_order(1, "order_paid", "5", "CNY")])
    assert panels.notice(engine.snapshot("shop", 0), "zh") == ""
