"""Amounts in another currency than the campaign's are converted with its configured rates, or kept out of GMV."""

import base64
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import msgspec
import pytest

from app.campaigns import model as campaigns
from app.campaigns import store
from app.core.configfile import ConfigError
from app.metrics.engine import Engine
from app.metrics.snapshot import Unconverted
from tests.conftest import create_key, scrape_metrics, start_server, wait_until
from tests.helpers import currency_order, definition, shop_with_rates

NOW = datetime.now(UTC)


def test_foreign_amounts_are_converted_with_the_campaigns_rate_or_reported_apart_never_added_as_is():
    engine = Engine([shop_with_rates(USD="7.10")])
    engine.apply(
        [
            currency_order(1, "order_paid", "100", "CNY"),
            currency_order(2, "order_paid", "10", "USD"),
            currency_order(3, "order_paid", "5", "EUR"),
            currency_order(4, "order_created", "8", "EUR"),
            currency_order(5, "refund", "2", "EUR"),
            currency_order(6, "order_paid", "1", None),
        ]
    )
    snapshot = engine.snapshot("shop", NOW.timestamp())
    totals = snapshot.totals
    assert engine.states["shop"].dims[""].totals[8] == Decimal("100") + Decimal("71.00") + 1, "exact: 10 USD × 7.10"
    assert totals.gmv_paid == 172 and totals.orders_paid == 4, "the EUR order counts, its amount does not"
    assert totals.gmv_created == 0 and totals.refund_amount == 0
    assert snapshot.unconverted == {"EUR": Unconverted(events=3, gmv_created=8.0, gmv_paid=5.0, refund_amount=2.0)}
    assert snapshot.currency == "CNY"


def test_exchange_rates_are_validated_where_the_operator_wrote_them():
    base = msgspec.json.decode(campaigns.to_json(definition("shop")))

    def parse(rates: dict) -> campaigns.Campaign:
        return campaigns.parse(msgspec.json.encode({**base, "exchange_rates": rates}).decode())

    assert parse({"USD": 7.1}).exchange_rates == {"USD": Decimal("7.1")}
    for rates, reason in (({"USD": 0}, "greater than 0"), ({"CNY": 1}, "own currency"), ({"usd": 7}, "ISO 4217")):
        with pytest.raises(ConfigError, match=reason) as error:
            parse(rates)
        assert error.value.field is not None and error.value.field.startswith("exchange_rates"), error.value


async def test_segment_order_completed_in_usd_counts_converted_and_yen_without_a_rate_stays_out(dsn, db):
    await store.save(db, shop_with_rates(USD="7.10"))
    ingest, screen = await create_key(dsn, "ingest"), await create_key(dsn, "screen")
    server = start_server(dsn)
    auth = base64.b64encode(f"{ingest}:".encode()).decode()
    sent = NOW.isoformat()

    def completed(message_id: str, total: float, currency: str) -> dict:
        return {
            "type": "track",
            "event": "Order Completed",
            "messageId": message_id,
            "userId": "u-1",
            "timestamp": sent,
            "properties": {"order_id": message_id, "total": total, "currency": currency, "campaign": "shop"},
        }

    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            batch = {
                "batch": [completed("m-1", 100, "CNY"), completed("m-2", 10, "usd"), completed("m-3", 1000, "JPY")],
                "sentAt": sent,
            }
            response = await http.post("/v1/batch", json=batch, headers={"Authorization": f"Basic {auth}"})
            assert response.status_code == 200 and response.json()["rejected"] == [], response.text

            async def snapshot() -> dict:
                return (await http.get("/v1/campaigns/shop/snapshot", params={"token": screen})).json()

            async def counted() -> bool:
                return (await snapshot())["totals"]["orders_paid"] == 3

            await wait_until(counted)
            body = await snapshot()
            assert body["totals"]["gmv_paid"] == 171, "100 CNY + 10 USD × 7.10; the yen are not added as is"
            assert body["unconverted"] == {
                "JPY": {"events": 1, "gmv_paid": 1000.0, "gmv_created": 0.0, "refund_amount": 0.0}
            }
            exposition = await scrape_metrics(http, dsn)
            assert 'warroom_unconverted_amount_events_total{campaign="shop",currency="JPY"} 1.0' in exposition
    finally:
        server.stop()
