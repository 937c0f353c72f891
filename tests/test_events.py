"""The event schema and its per-type rules, as pure functions (no database)."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest

from app.ingest.events import COLUMNS, EVENT_TYPES, MAX_PROPS_BYTES, Defaults, decode_event
from tests.conftest import event

NOW = datetime(2026, 11, 11, 0, 0, tzinfo=timezone(timedelta(hours=8)))
DEFAULTS = Defaults(campaign="default", currency="CNY")


def decode(data: dict):
    return decode_event(msgspec.json.encode(data), NOW, DEFAULTS)


def column(row, name):
    return row[COLUMNS.index(name)]


@pytest.mark.parametrize("type_", EVENT_TYPES)
def test_every_type_has_a_valid_example(type_):
    row, errors = decode(event("e-1", type_))
    assert errors == []
    assert column(row, "type") == type_


def test_defaults_are_filled_in():
    row, _ = decode(event("e-1", "order_paid"))
    assert column(row, "occurred_at") == NOW
    assert column(row, "campaign") == "default"
    assert column(row, "currency") == "CNY"
    assert column(row, "amount") == Decimal("100")
    stock, _ = decode(event("e-2", "stock_level"))
    assert column(stock, "warehouse") == "default"


@pytest.mark.parametrize(
    ("type_", "missing", "field"),
    [
        ("order_paid", "order_id", "order_id"),
        ("order_paid", "amount", "amount"),
        ("order_created", "user_id", "user_id"),
        ("refund", "amount", "amount"),
        ("stock_level", "sku", "sku"),
        ("stock_level", "quantity", "quantity"),
        ("product_view", "sku", "sku"),
        ("metric", "value", "value"),
        ("visit", "anonymous_id", "user_id"),
    ],
)
def test_per_type_requirements(type_, missing, field):
    data = event("e-1", type_)
    del data[missing]
    row, errors = decode(data)
    assert row is None
    assert [e.field for e in errors] == [field]


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"type": "teleport"}, "type", "unknown event type 'teleport'"),
        ({"ammount": 5}, "ammount", "unknown field"),
        ({"event_id": ""}, "event_id", "length >= 1"),
        ({"event_id": "x" * 129}, "event_id", "length <= 128"),
        ({"amount": -1}, "amount", "from 0"),
        ({"amount": "NaN"}, "amount", "finite"),
        ({"quantity": 1.5}, "quantity", "Expected `int"),
        ({"quantity": 0}, "quantity", "at least 1"),
        ({"currency": "rmb"}, "currency", "ISO 4217"),
        ({"occurred_at": "2026-11-11T00:00:00"}, "occurred_at", "UTC offset"),
        ({"occurred_at": "2026-11-11T00:06:00+08:00"}, "occurred_at", "future"),
        ({"occurred_at": "yesterday"}, "occurred_at", "datetime"),
        ({"occurred_at": "0001-01-01T00:00:00+14:00"}, "occurred_at", "before 1970"),
        ({"occurred_at": "1970-01-01T07:59:59+08:00"}, "occurred_at", "before 1970"),
        ({"props": [1, 2]}, "props", "JSON object"),
        ({"props": {"k": "v" * MAX_PROPS_BYTES}}, "props", "at most 8192 bytes"),
        ({"labels": {"k": 1}}, "labels", "Expected `str`"),
        ({"campaign": "has space"}, "campaign", "letters, digits"),
    ],
)
def test_invalid_fields_are_named(fields, field, fragment):
    row, errors = decode(event("e-1", "order_paid") | fields)
    assert row is None
    assert errors[0].field == field
    assert fragment in errors[0].message


def test_backfilled_history_and_near_future_are_accepted():
    last_year = (NOW - timedelta(days=366)).isoformat()
    row, errors = decode(event("e-1", occurred_at=last_year))
    assert errors == [] and column(row, "occurred_at") == NOW - timedelta(days=366)
    soon = (NOW + timedelta(minutes=4)).isoformat()
    assert decode(event("e-2", occurred_at=soon))[1] == []


def test_stock_quantity_rules():
    assert decode(event("e-1", "stock_level", quantity=-1))[1][0].field == "quantity"
    assert decode(event("e-2", "stock_level", quantity=0))[1] == []
    assert decode(event("e-3", "stock_adjust", quantity=0))[1][0].field == "quantity"
    assert decode(event("e-4", "stock_adjust", quantity=-30))[1] == []


def test_nul_characters_are_rejected_before_postgres_sees_them():
    assert decode(event("e-\u0000"))[1][0].message.startswith("strings must not contain NUL")
    assert decode(event("e-1", props={"note": "a\u0000b"}))[1][0].message.startswith("strings must not contain NUL")
    escaped_backslash = decode(event("e-2", props={"path": "C:\\u0000"}))
    assert escaped_backslash[1] == []


def test_props_are_stored_as_posted_json():
    row, _ = decode(event("e-1", props={"coupon": "11-11", "items": [1, 2]}))
    assert msgspec.json.decode(column(row, "props")) == {"coupon": "11-11", "items": [1, 2]}
    metric, _ = decode(event("e-2", "metric", labels={"channel": "douyin"}))
    assert msgspec.json.decode(column(metric, "labels")) == {"channel": "douyin"}


def decode_raw(props: str):
    """Decode an event whose props are given as raw JSON text (numbers and escapes Python would rewrite)."""
    raw = msgspec.json.encode(event("e-raw")).replace(b'"event_id"', b'"props":' + props.encode() + b',"event_id"', 1)
    return decode_event(raw, NOW, DEFAULTS)


@pytest.mark.parametrize("number", ["1e-20000", "0e-16384", "1.5e-16383", "-1e131072", "12.5E+200000"])
def test_props_numbers_jsonb_cannot_hold_are_rejected(number):
    row, errors = decode_raw(f'{{"ok": "1e-99999", "n": [1, {number}]}}')
    assert row is None and errors[0].field == "props", errors
    assert number in errors[0].message and "16383" in errors[0].message, errors


@pytest.mark.parametrize("number", ["1e-16383", "9.9e131071", "0e99999999", "1e308", "-0.5"])
def test_props_numbers_jsonb_can_hold_are_kept_as_posted(number):
    row, errors = decode_raw(f'{{"n": {number}}}')
    assert errors == [] and column(row, "props") == f'{{"n": {number}}}'


@pytest.mark.parametrize(
    "text, stored",
    [
        (r'"\ud800"', r'"\ufffd"'),
        (r'"a\uDC00b\ud83d"', r'"a\ufffdb\ufffd"'),
        (r'"\ud83d\ude00 pair"', r'"\ud83d\ude00 pair"'),
        (r'"\\ud800 is text"', r'"\\ud800 is text"'),
        (r'"\\\ud800"', r'"\\\ufffd"'),
    ],
)
def test_lone_surrogates_in_props_become_the_replacement_character(text, stored):
    row, errors = decode_raw(f'{{"k": {text}}}')
    assert errors == [] and column(row, "props") == f'{{"k": {stored}}}'


def test_a_watermark_needs_its_time_and_campaign():
    """A watermark says how far a replay has sent: without its time or campaign it says nothing."""
    _, errors = decode({"event_id": "w-1", "type": "watermark"})
    assert {e.field for e in errors} == {"occurred_at", "campaign"}
