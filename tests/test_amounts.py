"""Amounts are validated to what the events table stores, per event, so one bad amount never costs its batch."""

from decimal import Decimal

import httpx

from app.ingest.events import MAX_AMOUNT_DECIMALS
from tests.conftest import event


async def test_an_amount_the_column_cannot_hold_is_rejected_alone_and_the_rest_of_the_batch_is_stored(
    client: httpx.AsyncClient, db
):
    good = [event(f"ok-{i}", "order_paid", order_id=f"o-{i}", amount=10) for i in range(3)]
    bad = [
        b'{"event_id": "tiny", "type": "order_paid", "order_id": "o-t", "amount": 1e-20000}',
        b'{"event_id": "digits", "type": "order_paid", "order_id": "o-d", "amount": 1.'
        + b"1" * (MAX_AMOUNT_DECIMALS + 1)
        + b"}",
        b'{"event_id": "nan", "type": "order_paid", "order_id": "o-n", "amount": "NaN"}',
        b'{"event_id": "inf", "type": "refund", "order_id": "o-i", "amount": "Infinity"}',
    ]
    body = (
        b'{"events": ['
        + b", ".join(
            [
                httpx.Request("POST", "/", json=good[0]).content,
                *bad,
                *(httpx.Request("POST", "/", json=e).content for e in good[1:]),
            ]
        )
        + b"]}"
    )
    response = await client.post("/v1/events", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 202, response.text
    report = response.json()
    assert report["accepted"] == 3
    assert [(r["index"], [e["field"] for e in r["errors"]]) for r in report["rejected"]] == [
        (1, ["amount"]),
        (2, ["amount"]),
        (3, ["amount"]),
        (4, ["amount"]),
    ]
    assert "decimal places" in report["rejected"][0]["errors"][0]["message"]
    stored = await db.fetch("SELECT event_id, amount FROM events ORDER BY seq")
    assert [(r["event_id"], r["amount"]) for r in stored] == [(f"ok-{i}", Decimal(10)) for i in range(3)]


async def test_an_amount_with_the_most_decimals_allowed_is_stored_exactly(client: httpx.AsyncClient, db):
    amount = "0." + "0" * (MAX_AMOUNT_DECIMALS - 1) + "1"
    body = b'{"event_id": "fine", "type": "order_paid", "order_id": "o-f", "amount": ' + amount.encode() + b"}"
    response = await client.post("/v1/events", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 202, response.text
    assert await db.fetchval("SELECT amount FROM events") == Decimal(amount)
