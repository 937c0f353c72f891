"""The event schema integrators post, and its validation.

Decoding is done with msgspec (one typed pass, no intermediate dicts) because
validation cost decides how close HTTP ingest gets to the database's COPY
ceiling. Each event is checked on its own so one bad event in a batch is
reported by index and field while the others are stored.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from app.core import nesting
from app.core.configfile import plain_reason

MAX_FUTURE = timedelta(minutes=5)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""Events before this are refused: no promotion happened then, and far-past instants (year 1 with a
+14:00 offset) cannot even be converted to UTC for storage."""
MAX_PROPS_BYTES = 8 * 1024
MAX_LABELS = 32
MAX_AMOUNT = Decimal("1e12")
MAX_AMOUNT_DECIMALS = 20
"""Decimal places an amount may have: every currency's minor unit and a float's printing noise (a double
printed in full has at most 17 significant digits, so at most 20 decimals from 0.001 up) fit, while an
exponent such as ``1e-20000`` — which the ``numeric`` column refuses past 16,383 decimals, failing the whole
commit — is rejected as the one event it is."""
JSONB_MAX_DECIMALS = 16_383
JSONB_MAX_INTEGER_DIGITS = 131_072
"""jsonb stores numbers as ``numeric``, which holds at most this many digits after and before the point:
a props number beyond them (``1e-20000``) would fail the whole commit, so it is the event's error."""
_LONG_EXPONENT = re.compile(r"[eE][+-]?0*[1-9][0-9]{3}")
"""Within ``MAX_PROPS_BYTES`` of digits, only an exponent of 1000 or more can leave jsonb's range."""
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPES = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|(\\u[dD][89a-fA-F][0-9a-fA-F]{2})|\\.", re.DOTALL
)
"""A surrogate pair (kept), a lone surrogate escape (group 1, replaced), or any other escape (kept, so that
an escaped backslash followed by ``ud800`` is not mistaken for one)."""
REPLACEMENT_ESCAPE = b"\\ufffd"
MAX_QUANTITY = 1_000_000_000
DEFAULT_WAREHOUSE = "default"

EventType = Literal[
    "visit",
    "page_view",
    "product_view",
    "add_to_cart",
    "checkout",
    "order_created",
    "order_paid",
    "order_cancelled",
    "refund",
    "stock_level",
    "stock_adjust",
    "metric",
    "watermark",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]

Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Slug = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. CNY")]
Quantity = Annotated[int, msgspec.Meta(ge=-MAX_QUANTITY, le=MAX_QUANTITY)]
LabelName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
LabelValue = Annotated[str, msgspec.Meta(max_length=256)]
Props = Annotated[
    msgspec.Raw,
    msgspec.Meta(extra_json_schema={"type": "object", "description": "Free-form attributes, at most 8 KB of JSON."}),
]

VISITOR = "user_id|anonymous_id"
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "visit": (VISITOR,),
    "page_view": (VISITOR,),
    "product_view": (VISITOR, "sku"),
    "add_to_cart": (VISITOR, "sku"),
    "checkout": (VISITOR,),
    "order_created": (VISITOR, "order_id", "amount"),
    "order_paid": ("order_id", "amount"),
    "order_cancelled": ("order_id",),
    "refund": ("order_id", "amount"),
    "stock_level": ("sku", "quantity"),
    "stock_adjust": ("sku", "quantity"),
    "metric": ("metric", "value"),
    "watermark": ("occurred_at", "campaign"),
}
"""A ``watermark`` says a replay has sent everything up to its ``occurred_at``: the campaign then runs on event
time (``app/campaigns/clock.py``)."""
POSITIVE_QUANTITY = frozenset({"add_to_cart", "checkout", "order_created", "order_paid", "order_cancelled", "refund"})
STOCK_TYPES = frozenset({"stock_level", "stock_adjust"})

EXAMPLES: dict[str, dict[str, Any]] = {
    "order_paid": {
        "event_id": "pay-20261111-000123",
        "type": "order_paid",
        "occurred_at": "2026-11-11T00:00:03+08:00",
        "campaign": "double11-demo",
        "channel": "tmall",
        "user_id": "u-8812",
        "order_id": "o-000123",
        "sku": "SKU-1001",
        "quantity": 2,
        "amount": 598.00,
        "currency": "CNY",
    },
    "stock_level": {
        "event_id": "stock-SKU-1001-wh-sh-1699632000",
        "type": "stock_level",
        "sku": "SKU-1001",
        "warehouse": "wh-sh",
        "quantity": 1200,
    },
    "metric": {
        "event_id": "spend-douyin-202611110001",
        "type": "metric",
        "metric": "ad_spend",
        "value": 15000.0,
        "labels": {"channel": "douyin"},
    },
    "watermark": {
        "event_id": "replay-double11-demo-00-03-12",
        "type": "watermark",
        "occurred_at": "2026-11-11T00:03:12+08:00",
        "campaign": "double11-demo",
    },
}


class EventIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One event as posted to ``POST /v1/events``."""

    event_id: Identifier
    type: EventType
    occurred_at: datetime | None = None
    campaign: Slug | None = None
    channel: Name | None = None
    user_id: Identifier | None = None
    anonymous_id: Identifier | None = None
    session_id: Identifier | None = None
    order_id: Identifier | None = None
    sku: Identifier | None = None
    quantity: Quantity | None = None
    amount: Decimal | None = None
    currency: Currency | None = None
    warehouse: Name | None = None
    metric: Name | None = None
    value: float | None = None
    labels: dict[LabelName, LabelValue] | None = None
    props: Props | msgspec.UnsetType = msgspec.UNSET


COLUMNS: tuple[str, ...] = (
    "event_id",
    "type",
    "occurred_at",
    "campaign",
    "channel",
    "user_id",
    "anonymous_id",
    "session_id",
    "order_id",
    "sku",
    "quantity",
    "amount",
    "currency",
    "warehouse",
    "metric",
    "value",
    "labels",
    "props",
)
Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Defaults:
    """Values filled in when an event leaves them out."""

    campaign: str
    currency: str


_MSGSPEC_PATH = re.compile(r"^(?P<message>.*?) - at `\$(?P<path>[^`]*)`$")
_MSGSPEC_FIELD = re.compile(r"^Object (?P<what>contains unknown|missing required) field `(?P<field>[^`]*)`")


def field_error(exc: msgspec.MsgspecError) -> FieldError:
    """Turn a msgspec message such as "Expected `int` - at `$.quantity`" into field + message."""
    text = str(exc)
    match = _MSGSPEC_PATH.match(text)
    if match:
        path = match["path"].lstrip(".").replace("[...]", "")
        text = match["message"]
    else:
        path = ""
    if "matching regex" in text:
        return FieldError(path or None, plain_reason(text))
    if path == "type" and text.startswith("Invalid enum value"):
        return FieldError(
            "type", f"unknown event type {text.split('value ', 1)[1]}; expected one of {', '.join(EVENT_TYPES)}"
        )
    field_match = _MSGSPEC_FIELD.match(text)
    if field_match:
        field = ".".join(p for p in (path, field_match["field"]) if p)
        reason = "unknown field" if field_match["what"] == "contains unknown" else "required field is missing"
        return FieldError(field, reason)
    return FieldError(path or None, text)


def has_nul(value: Any) -> bool:
    """Whether any string in decoded JSON holds NUL; iterative, so no nesting depth can exhaust the stack."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def mend_surrogates(data: bytes) -> bytes:
    """JSON text with every lone UTF-16 surrogate escape (``"\\ud800"``, as JavaScript SDKs produce when
    they cut a string inside an emoji) replaced by U+FFFD, as browsers and Segment do. Such escapes are
    not valid Unicode: the JSON decoder and PostgreSQL refuse them, which would lose the whole request;
    replacing keeps the event (the same input always gives the same text, so deduplication holds)."""
    if not _SURROGATE_HINT.search(data):
        return data
    return _SURROGATE_ESCAPES.sub(lambda m: REPLACEMENT_ESCAPE if m.group(1) else m.group(0), data)


def jsonb_unfit_number(text: str) -> str | None:
    """The first number in JSON ``text`` (outside strings) that jsonb cannot store, else None."""
    if not _LONG_EXPONENT.search(text):
        return None
    for token in _JSON_NUMBER.findall(_JSON_STRING.sub('""', text)):
        number = Decimal(token)
        exponent = number.as_tuple().exponent
        if not isinstance(exponent, int):  # NaN or infinity, which the JSON number pattern never matches
            continue
        if number.is_zero() and exponent < -JSONB_MAX_DECIMALS:
            return token
        if not number.is_zero() and (
            -exponent > JSONB_MAX_DECIMALS or number.adjusted() + 1 > JSONB_MAX_INTEGER_DIGITS
        ):
            return token
    return None


def _props_text(raw: msgspec.Raw) -> tuple[str | None, FieldError | None]:
    data = bytes(raw)
    if len(data) > MAX_PROPS_BYTES:
        return None, FieldError("props", f"must be at most {MAX_PROPS_BYTES} bytes of JSON, got {len(data)}")
    if data[:1] != b"{":
        return None, FieldError("props", "must be a JSON object")
    levels = nesting.too_deep(data, nesting.MAX_PROPS_DEPTH)
    if levels is not None:
        return None, FieldError("props", f"nests {levels} levels of arrays/objects; at most {nesting.MAX_PROPS_DEPTH}")
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        return None, FieldError("props", f"is not valid UTF-8 (byte {exc.start})")
    if "\\u0000" in text and has_nul(msgspec.json.decode(data)):
        return None, FieldError("props", "strings must not contain NUL (\\u0000)")
    unfit = jsonb_unfit_number(text)
    if unfit is not None:
        return None, FieldError(
            "props",
            f"number {unfit[:40]} cannot be stored: at most {JSONB_MAX_DECIMALS} digits after the decimal point "
            f"and {JSONB_MAX_INTEGER_DIGITS} before",
        )
    return text, None


def decode_event(raw: bytes | msgspec.Raw, now: datetime, defaults: Defaults) -> tuple[Row | None, list[FieldError]]:
    """Validate one JSON-encoded event; return its storage row or the reasons it was rejected."""
    raw = mend_surrogates(bytes(raw))
    try:
        if b"\\u0000" in raw and has_nul(msgspec.json.decode(raw)):
            return None, [FieldError(None, "strings must not contain NUL (\\u0000)")]
        event = msgspec.json.decode(raw, type=EventIn)
    except msgspec.ValidationError as exc:  # subclass of DecodeError, so first
        return None, [field_error(exc)]
    except msgspec.DecodeError as exc:
        return None, [FieldError(None, str(exc))]
    except UnicodeDecodeError as exc:  # msgspec reports invalid UTF-8 inside strings this way
        return None, [FieldError(None, f"a string is not valid UTF-8 (byte {exc.start} of the event)")]
    except RecursionError:
        return None, [
            FieldError(None, f"the event nests {nesting.depth(raw)} levels of arrays/objects, too deep to decode")
        ]
    return check_event(event, now, defaults)


class _Claim(msgspec.Struct):
    type: Any = None


def claimed_type(raw: bytes | msgspec.Raw) -> str:
    """The event type a rejected JSON event claims if it is one of ``EVENT_TYPES``, else ``invalid``: a
    metrics label that arbitrary input cannot multiply."""
    try:
        claimed = msgspec.json.decode(raw, type=_Claim).type
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return "invalid"
    return claimed if isinstance(claimed, str) and claimed in EVENT_TYPES else "invalid"


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    events: list[EventIn]


_BATCH_DECODER = msgspec.json.Decoder(_Batch)
BATCH_PREFIX = b'{"events"'


def decode_batch(
    body: bytes, limit: int, now: datetime, defaults: Defaults
) -> list[tuple[Row | None, list[FieldError]]] | None:
    """Every event of a ``{"events": [...]}`` body whose events all pass the type check, in one decode.

    None when that does not hold (another shape, a NUL escape somewhere, an event with a wrong field,
    more than ``limit`` events): the caller then decodes item by item, which names each bad item and
    field. One decode of the whole body costs about half of decoding each event on its own.
    """
    if not body.startswith(BATCH_PREFIX) or b"\\u0000" in body:
        return None
    try:
        events = _BATCH_DECODER.decode(body).events
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if len(events) > limit:
        return None
    return [check_event(event, now, defaults) for event in events]


def _amount_error(amount: Decimal) -> str | None:
    """Why the ``numeric`` column (and the engine's exact sums) cannot take ``amount``, or None."""
    if not (amount.is_finite() and Decimal(0) <= amount < MAX_AMOUNT):
        return f"must be a finite number from 0 to below {MAX_AMOUNT:,.0f}"
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_AMOUNT_DECIMALS:
        return f"must have at most {MAX_AMOUNT_DECIMALS} decimal places, got {-exponent}"
    return None


def check_event(event: EventIn, now: datetime, defaults: Defaults) -> tuple[Row | None, list[FieldError]]:
    """Apply the rules a type check cannot express and build the storage row."""
    errors: list[FieldError] = []
    for required in REQUIRED_FIELDS[event.type]:
        if required == VISITOR:
            if event.user_id is None and event.anonymous_id is None:
                errors.append(FieldError("user_id", f"{event.type} needs user_id or anonymous_id"))
        elif getattr(event, required) is None:
            errors.append(FieldError(required, f"required for {event.type} events"))

    occurred_at = event.occurred_at
    if occurred_at is None:
        occurred_at = now
    elif occurred_at.tzinfo is None:
        errors.append(FieldError("occurred_at", "must include a UTC offset (RFC 3339), e.g. 2026-11-11T00:00:00+08:00"))
    elif occurred_at - now > MAX_FUTURE:
        errors.append(FieldError("occurred_at", "is more than 5 minutes in the future"))
    elif occurred_at.year <= EARLIEST.year and occurred_at < EARLIEST:
        errors.append(FieldError("occurred_at", "is before 1970-01-01T00:00:00Z"))

    amount = event.amount
    if amount is not None:
        amount_error = _amount_error(amount)
        if amount_error:
            errors.append(FieldError("amount", amount_error))
    if event.value is not None and not math.isfinite(event.value):
        errors.append(FieldError("value", "must be a finite number"))

    quantity = event.quantity
    if quantity is not None:
        if event.type in POSITIVE_QUANTITY and quantity < 1:
            errors.append(FieldError("quantity", f"must be at least 1 for {event.type}"))
        elif event.type == "stock_level" and quantity < 0:
            errors.append(FieldError("quantity", "stock_level is the absolute on-hand count and must be >= 0"))
        elif event.type == "stock_adjust" and quantity == 0:
            errors.append(FieldError("quantity", "stock_adjust is a delta and must not be 0"))

    if event.labels is not None and len(event.labels) > MAX_LABELS:
        errors.append(FieldError("labels", f"at most {MAX_LABELS} labels"))

    props = None
    if event.props is not msgspec.UNSET:
        props, props_error = _props_text(event.props)
        if props_error:
            errors.append(props_error)

    if errors:
        return None, errors

    warehouse = event.warehouse
    if warehouse is None and event.type in STOCK_TYPES:
        warehouse = DEFAULT_WAREHOUSE
    currency = event.currency or (defaults.currency if amount is not None else None)
    labels = msgspec.json.encode(event.labels).decode() if event.labels is not None else None
    return (
        event.event_id,
        event.type,
        occurred_at,
        event.campaign or defaults.campaign,
        event.channel,
        event.user_id,
        event.anonymous_id,
        event.session_id,
        event.order_id,
        event.sku,
        quantity,
        amount,
        currency,
        warehouse,
        event.metric,
        event.value,
        labels,
        props,
    ), []


def json_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """The event's JSON Schema and its component definitions, for the OpenAPI document."""
    (schema,), components = msgspec.json.schema_components([EventIn], ref_template="#/components/schemas/{name}")
    return schema, components


def utcnow() -> datetime:
    return datetime.now(UTC)
