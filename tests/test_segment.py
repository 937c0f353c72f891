"""Segment compatibility: the real segment-analytics-python SDK pointed at the war-room, and the mapping rules."""

import asyncio
import base64
import gzip
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from segment.analytics import Client

from app.ingest.events import COLUMNS, Defaults
from app.ingest.segment import derived_message_id, to_event

NOW = datetime(2026, 11, 11, 0, 10, tzinfo=UTC)
DEFAULTS = Defaults(campaign="default", currency="CNY")


@pytest.mark.parametrize("gzip", [False, True])
async def test_real_segment_sdk_events_are_stored(server, ingest_key, db, gzip):
    errors: list[Exception] = []
    sdk = Client(
        write_key=ingest_key, host=server.url, gzip=gzip, sync_mode=False, on_error=lambda e, batch: errors.append(e)
    )

    def send() -> None:
        sdk.page("u-1", "Home", properties={"url": "https://shop.example/"}, message_id="seg-page-1")
        sdk.track(
            "u-1", "Product Viewed", {"product_id": "SKU-7", "price": 99.0, "channel": "app"}, message_id="seg-pv-1"
        )
        sdk.track("u-1", "Product Added", {"sku": "SKU-7", "price": 99.0, "quantity": 2}, message_id="seg-add-1")
        sdk.track(
            "u-1", "Order Completed", {"order_id": "o-77", "total": 198.0, "currency": "cny"}, message_id="seg-oc-1"
        )
        sdk.track("u-1", "Order Refunded", {"order_id": "o-77", "total": 99.0}, message_id="seg-rf-1")
        sdk.identify("u-1", {"vip": True}, message_id="seg-id-1")
        sdk.flush()
        sdk.join()

    await asyncio.to_thread(send)
    assert errors == []
    rows = {r["event_id"]: r for r in await db.fetch("SELECT * FROM events")}
    assert set(rows) == {"seg-page-1", "seg-pv-1", "seg-add-1", "seg-oc-1", "seg-rf-1"}
    assert rows["seg-page-1"]["type"] == "page_view"
    assert rows["seg-pv-1"]["type"] == "product_view" and rows["seg-pv-1"]["sku"] == "SKU-7"
    assert rows["seg-pv-1"]["channel"] == "app"
    assert rows["seg-add-1"]["type"] == "add_to_cart" and str(rows["seg-add-1"]["amount"]) == "198.0"
    assert rows["seg-oc-1"]["type"] == "order_paid" and rows["seg-oc-1"]["order_id"] == "o-77"
    assert rows["seg-oc-1"]["currency"] == "CNY" and rows["seg-oc-1"]["user_id"] == "u-1"
    assert rows["seg-rf-1"]["type"] == "refund"


async def test_segment_batch_reports_unsupported_calls_and_dedups(server, ingest_key, db):
    auth = base64.b64encode(f"{ingest_key}:".encode()).decode()
    batch = {
        "batch": [
            {
                "type": "track",
                "event": "Checkout Started",
                "messageId": "s-1",
                "userId": "u-2",
                "properties": {"order_id": "o-1"},
            },
            {"type": "identify", "messageId": "s-2", "userId": "u-2"},
            {"type": "track", "event": "Wishlist Shared", "messageId": "s-3", "userId": "u-2"},
            {"type": "track", "event": "Order Completed", "messageId": "s-4", "userId": "u-2", "properties": {}},
        ],
        "sentAt": NOW.isoformat(),
    }
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Basic {auth}"}) as http:
        first = await http.post("/v1/batch", json=batch)
        again = await http.post("/v1/batch", json=batch)
        unauthenticated = await http.post("/v1/track", json={"event": "x"}, headers={"Authorization": ""})
        body_key = await http.post(
            "/v1/track",
            json={
                "writeKey": ingest_key,
                "event": "Product Viewed",
                "messageId": "s-5",
                "anonymousId": "a",
                "properties": {"sku": "S"},
            },
            headers={"Authorization": ""},
        )
    assert first.status_code == 200
    report = first.json()
    assert report["success"] is True and report["accepted"] == 1
    assert {r["index"]: r["errors"][0]["field"] for r in report["rejected"]} == {
        1: "type",
        2: "event",
        3: "properties.order_id",
    }
    assert again.json()["duplicates"] == 1 and again.json()["accepted"] == 0
    assert unauthenticated.status_code == 401
    assert body_key.status_code == 200 and body_key.json()["accepted"] == 1
    assert await db.fetchval("SELECT count(*) FROM events") == 2


async def test_a_keyless_gzip_body_is_held_to_the_keyless_limit_once_decompressed(server, ingest_key, db):
    """A body carrying its key only inside (writeKey) is read before the key is checked: small compressed,
    it must not inflate past 512 KiB either; with the key in a header, the ingest limit applies."""
    message = {
        "type": "track",
        "event": "Product Viewed",
        "messageId": "big-1",
        "anonymousId": "a",
        "properties": {"sku": "S", "padding": "x" * 7000},
    }
    batch = {"writeKey": ingest_key, "batch": [{**message, "messageId": f"big-{i}"} for i in range(100)]}
    raw = json.dumps(batch).encode()
    body = gzip.compress(raw)
    assert len(body) < 64 * 1024 < 512 * 1024 < len(raw) < 5 * 1024 * 1024
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        keyless = await http.post("/v1/batch", content=body, headers=headers)
        keyed = await http.post("/v1/batch", content=body, headers=headers, auth=(ingest_key, ""))
    assert keyless.status_code == 413 and "writeKey" in keyless.json()["error"]["message"], keyless.text
    assert keyed.status_code == 200 and keyed.json()["accepted"] == 100, keyed.text


def column(row, name):
    return row[COLUMNS.index(name)]


def test_clock_skew_of_the_sender_is_corrected():
    message = {"type": "page", "messageId": "m", "anonymousId": "a", "timestamp": "2026-11-11T00:20:00Z"}
    row, errors = to_event(message, NOW, DEFAULTS, clock_skew=timedelta(minutes=-12))
    assert errors == []
    assert column(row, "occurred_at") == datetime(2026, 11, 11, 0, 8, tzinfo=UTC)


def test_product_amount_is_price_times_quantity_and_order_prefers_total():
    added, _ = to_event(
        {
            "type": "track",
            "event": "Product Added",
            "messageId": "m1",
            "userId": "u",
            "properties": {"sku": "S", "price": 10.5, "quantity": 3.0},
        },
        NOW,
        DEFAULTS,
    )
    assert str(column(added, "amount")) == "31.5" and column(added, "quantity") == 3
    order, _ = to_event(
        {
            "type": "track",
            "event": "Order Completed",
            "messageId": "m2",
            "properties": {"order_id": "o", "revenue": 90, "total": 100},
        },
        NOW,
        DEFAULTS,
    )
    assert str(column(order, "amount")) == "100"


def test_war_room_types_can_be_sent_as_track_events():
    row, errors = to_event(
        {
            "type": "track",
            "event": "stock_level",
            "messageId": "m",
            "properties": {"sku": "S", "quantity": 4, "warehouse": "wh"},
        },
        NOW,
        DEFAULTS,
    )
    assert errors == [] and column(row, "type") == "stock_level" and column(row, "warehouse") == "wh"


async def test_messages_without_message_id_get_a_stable_id_so_retries_deduplicate(client, db):
    """messageId is optional in Segment's HTTP spec: the id is derived from the message's content, without the
    fields a retry changes (sentAt, _metadata, writeKey)."""
    order = {
        "type": "track",
        "event": "Order Completed",
        "userId": "u-3",
        "timestamp": "2026-11-11T00:01:00Z",
        "properties": {"order_id": "o-3", "total": 10},
    }
    page = {"type": "page", "anonymousId": "a-3", "timestamp": "2026-11-11T00:01:00Z"}
    first = await client.post("/v1/batch", json={"batch": [order, page], "sentAt": "2026-11-11T00:01:01Z"})
    retry = await client.post(
        "/v1/batch",
        json={"batch": [{**order, "sentAt": "2026-11-11T00:01:09Z", "_metadata": {"nodeVersion": "20"}}, page]},
    )
    other = await client.post("/v1/track", json={**order, "properties": {"order_id": "o-4", "total": 10}})
    assert first.json() == {"success": True, "accepted": 2, "duplicates": 0, "rejected": []}
    assert retry.json() == {"success": True, "accepted": 0, "duplicates": 2, "rejected": []}
    assert other.json()["accepted"] == 1
    ids = [r["event_id"] for r in await db.fetch("SELECT event_id FROM events ORDER BY order_id NULLS FIRST")]
    assert len(ids) == 3 and all(i.startswith("seg-") for i in ids)


def test_an_empty_user_id_is_no_user_id():
    """RudderStack's JS SDK sends ``"userId": ""`` until identify."""
    row, errors = to_event({"type": "page", "messageId": "m", "userId": "", "anonymousId": "a-1"}, NOW, DEFAULTS)
    assert errors == [] and column(row, "user_id") is None and column(row, "anonymous_id") == "a-1"


def test_the_derived_message_id_ignores_key_order_and_volatile_fields():
    message = {"type": "page", "anonymousId": "a", "timestamp": "2026-11-11T00:01:00Z", "properties": {"x": 1, "y": 2}}
    same = {
        "properties": {"y": 2, "x": 1},
        "timestamp": "2026-11-11T00:01:00Z",
        "anonymousId": "a",
        "type": "page",
        "sentAt": "2026-11-11T00:02:00Z",
        "writeKey": "k",
        "_metadata": {"bundled": []},
        "messageId": None,
    }
    row, errors = to_event(message, NOW, DEFAULTS)
    again, _ = to_event(same, NOW, DEFAULTS)
    later, _ = to_event({**message, "timestamp": "2026-11-11T00:01:01Z"}, NOW, DEFAULTS)
    assert errors == [] and column(row, "event_id") == column(again, "event_id") != column(later, "event_id")
    assert column(row, "event_id") == derived_message_id(message)


def test_timestamps_at_the_edge_of_the_calendar_are_rejected_not_crashing():
    row, errors = to_event(
        {"type": "page", "messageId": "m", "anonymousId": "a", "timestamp": "9999-12-31T23:59:59Z"},
        NOW,
        DEFAULTS,
        clock_skew=timedelta(hours=1),
    )
    assert row is None and errors[0].field == "timestamp" and "future" in errors[0].message
