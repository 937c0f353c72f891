"""Segment HTTP Tracking API messages mapped onto war-room events.

Existing Segment or RudderStack SDKs can point their host at the war-room:
``track`` calls named after the Segment e-commerce spec (v2) and ``page`` /
``screen`` calls become events; the message's ``messageId`` is the
idempotency key (derived from the message's content when it has none, see
``derived_message_id``). Unsupported calls (``identify``, ``group``, ``alias``) and
unmapped event names are reported per message, not silently dropped.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from app.ingest.events import EVENT_TYPES, Defaults, EventIn, FieldError, Row, check_event, field_error, has_nul

TRACK_EVENTS: dict[str, str] = {
    "Product Viewed": "product_view",
    "Product Added": "add_to_cart",
    "Checkout Started": "checkout",
    "Order Completed": "order_paid",
    "Order Cancelled": "order_cancelled",
    "Order Refunded": "refund",
}
"""Segment e-commerce spec names; a track call may also use a war-room type name (``stock_level``, ``metric`` …)."""

ENDPOINTS: dict[str, str | None] = {
    "/v1/batch": None,
    "/v1/track": "track",
    "/v1/page": "page",
    "/v1/screen": "screen",
    "/v1/identify": "identify",
    "/v1/group": "group",
    "/v1/alias": "alias",
    "/v1/b": None,
    "/v1/t": "track",
    "/v1/p": "page",
    "/v1/s": "screen",
    "/v1/i": "identify",
    "/v1/g": "group",
    "/v1/a": "alias",
}
"""The Segment-compatible endpoints and the call each takes (None: a batch of any calls); analytics.js posts
to the one-letter ones."""

DERIVED_ID_PREFIX = "seg-"
VOLATILE_FIELDS = frozenset({"messageId", "sentAt", "receivedAt", "_metadata", "writeKey"})
"""Fields an SDK may change when it retries a message (rudder-sdk-node stamps ``sentAt`` on each attempt),
or that are not the message: left out of a derived id."""

PAGE_CALLS = frozenset({"page", "screen"})
ORDER_TOTAL_KEYS = ("total", "revenue", "value", "amount")
PRODUCT_TYPES = frozenset({"product_view", "add_to_cart"})

SEGMENT_FIELD = {
    "event_id": "messageId",
    "occurred_at": "timestamp",
    "user_id": "userId",
    "anonymous_id": "anonymousId",
    "type": "event",
}
"""Our field names as the Segment message names them, for error messages."""


def _segment_path(field: str | None) -> str | None:
    if field is None:
        return None
    return SEGMENT_FIELD.get(field, f"properties.{field}")


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _unless_empty(value: Any) -> Any:
    """RudderStack's JS SDK sends ``"userId": ""`` before ``identify``: an empty id is no id, as for Segment."""
    return None if value == "" else value


def _integer(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def instant(value: Any) -> datetime | None:
    """An RFC 3339 timestamp with offset, or None when ``value`` is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        return None
    return parsed if parsed.tzinfo is not None else None


def derived_message_id(message: dict[str, Any]) -> str:
    """A stable id for a message sent without ``messageId`` (optional in Segment's HTTP spec), so that a retry
    of it is still a duplicate: ``seg-`` and the SHA-256 of its canonical JSON (keys sorted), without
    ``VOLATILE_FIELDS``. Two identical calls without ``timestamp`` are therefore one event."""
    content = {k: v for k, v in message.items() if k not in VOLATILE_FIELDS}
    return DERIVED_ID_PREFIX + hashlib.sha256(msgspec.json.encode(content, order="sorted")).hexdigest()


def _corrected(timestamp: Any, clock_skew: timedelta) -> Any:
    parsed = instant(timestamp)
    if parsed is None:
        return timestamp
    try:
        return parsed + clock_skew
    except OverflowError:  # a timestamp at the edge of the calendar: leave it for validation to judge
        return parsed


class Message(msgspec.Struct, rename="camel"):
    """The parts of a Segment message the war-room reads; other fields are ignored, as Segment does."""

    type: str | None = None
    event: str | None = None
    name: str | None = None
    message_id: Any = None
    user_id: Any = None
    anonymous_id: Any = None
    timestamp: Any = None
    original_timestamp: Any = None
    properties: dict[str, Any] | None = None
    context: dict[str, Any] | None = None


def _event_type(message: Message) -> tuple[str | None, FieldError | None]:
    if message.type in PAGE_CALLS:
        return "page_view", None
    if message.type != "track":
        return None, FieldError(
            "type", f"Segment {message.type!r} calls are not stored; send track, page or screen calls"
        )
    if message.event is None:
        return None, FieldError("event", "track calls need an event name")
    mapped = TRACK_EVENTS.get(message.event) or (message.event if message.event in EVENT_TYPES else None)
    if mapped is None:
        supported = ", ".join(sorted(TRACK_EVENTS))
        return None, FieldError(
            "event", f"event {message.event!r} is not mapped; use one of {supported} or a war-room type"
        )
    return mapped, None


def to_event(
    data: Any, now: datetime, defaults: Defaults, clock_skew: timedelta = timedelta(0)
) -> tuple[Row | None, list[FieldError]]:
    """Validate one Segment message and build its storage row.

    ``clock_skew`` (receive time minus the sender's ``sentAt``) corrects the
    message timestamp for a device whose clock is wrong, as Segment does.
    """
    if has_nul(data):
        return None, [FieldError(None, "strings must not contain NUL (\\u0000)")]
    try:
        message = msgspec.convert(data, Message)
    except msgspec.ValidationError as exc:
        return None, [field_error(exc)]
    event_type, error = _event_type(message)
    if error:
        return None, [error]
    properties = message.properties or {}
    utm = (message.context or {}).get("campaign")

    message_id = message.message_id
    if message_id is None and isinstance(data, dict):
        message_id = derived_message_id(data)
    fields: dict[str, Any] = {
        "event_id": message_id,
        "type": event_type,
        "occurred_at": _corrected(message.timestamp or message.original_timestamp, clock_skew),
        "user_id": _unless_empty(message.user_id),
        "anonymous_id": _unless_empty(message.anonymous_id),
        "campaign": properties.get("campaign") if isinstance(properties.get("campaign"), str) else None,
        "channel": properties.get("channel") or (utm.get("source") if isinstance(utm, dict) else None),
        "session_id": properties.get("session_id"),
        "order_id": properties.get("order_id") or properties.get("checkout_id"),
        "sku": properties.get("sku") or properties.get("product_id"),
        "quantity": _integer(properties.get("quantity")),
        "currency": properties["currency"].upper() if isinstance(properties.get("currency"), str) else None,
        "warehouse": properties.get("warehouse"),
        "metric": properties.get("metric"),
        "value": properties.get("value") if event_type == "metric" else None,
    }
    if event_type in PRODUCT_TYPES:
        price = _number(properties.get("price"))
        quantity = fields["quantity"] if isinstance(fields["quantity"], int) else 1
        fields["amount"] = price * quantity if price is not None else None
    else:
        fields["amount"] = next(
            (_number(properties[k]) for k in ORDER_TOTAL_KEYS if _number(properties.get(k)) is not None), None
        )
    if message.type in PAGE_CALLS and message.name:
        properties = {**properties, "name": message.name}
    fields = {k: v for k, v in fields.items() if v is not None}
    if properties:
        fields["props"] = msgspec.Raw(msgspec.json.encode(properties))
    try:
        event = msgspec.convert(fields, EventIn)
    except msgspec.ValidationError as exc:
        err = field_error(exc)
        return None, [FieldError(_segment_path(err.field), err.message)]
    row, errors = check_event(event, now, defaults)
    return row, [FieldError(_segment_path(e.field), e.message) for e in errors]
