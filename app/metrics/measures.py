"""What is counted per time bucket, and how each event type contributes.

Every bucket holds one number per measure. Money is kept as ``Decimal`` so
totals equal PostgreSQL's ``sum(amount)`` exactly; counts are ints; spend
(from ``metric`` events, which are floats) is a float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

MEASURES: tuple[str, ...] = (
    "visits",
    "page_views",
    "product_views",
    "add_to_cart",
    "checkouts",
    "orders_created",
    "gmv_created",
    "orders_paid",
    "gmv_paid",
    "orders_cancelled",
    "refunds",
    "refund_amount",
    "units_sold",
    "units_ordered",
    "cart_units",
    "spend",
)
INDEX: dict[str, int] = {name: i for i, name in enumerate(MEASURES)}
MONEY = frozenset({"gmv_created", "gmv_paid", "refund_amount"})
Amount = int | float | Decimal
"""One measure's value: a count (int), money (Decimal, exact) or spend (float); one measure never mixes them."""
ZERO_BUCKET: tuple[Amount, ...] = tuple(
    Decimal(0) if name in MONEY else (0.0 if name == "spend" else 0) for name in MEASURES
)

SPEND_METRICS = frozenset({"ad_spend", "spend", "marketing_spend"})
"""``metric`` events with one of these names are marketing spend (ROI = paid GMV ÷ spend)."""


class Event(NamedTuple):
    """One stored event, as the engine reads it from the events table."""

    seq: int
    type: str
    occurred_at: float
    campaign: str
    channel: str | None
    user_id: str | None
    anonymous_id: str | None
    order_id: str | None
    sku: str | None
    quantity: int | None
    amount: Decimal | None
    warehouse: str | None
    metric: str | None
    value: float | None
    labels: str | None
    """As stored: a JSON object of strings, or None."""
    currency: str | None = None
    """Of ``amount`` (ISO 4217); the engine converts it into the campaign's currency or keeps it out of GMV."""


EVENT_COLUMNS = (
    "seq, type, extract(epoch FROM occurred_at)::float8, campaign, channel, user_id, anonymous_id, "
    "order_id, sku, quantity, amount, warehouse, metric, value, labels::text, currency"
)
"""The select list that reads a row of ``events`` as an ``Event``, field for field."""


COUNTED_BY_TYPE: dict[str, str] = {
    "visit": "visits",
    "page_view": "page_views",
    "product_view": "product_views",
    "add_to_cart": "add_to_cart",
    "checkout": "checkouts",
    "order_created": "orders_created",
    "order_paid": "orders_paid",
    "order_cancelled": "orders_cancelled",
    "refund": "refunds",
}
AMOUNT_BY_TYPE: dict[str, str] = {"order_created": "gmv_created", "order_paid": "gmv_paid", "refund": "refund_amount"}
UNITS_BY_TYPE: dict[str, str] = {
    "order_paid": "units_sold",
    "order_created": "units_ordered",
    "add_to_cart": "cart_units",
}


def contributions(event: Event) -> list[tuple[int, Amount]]:
    """The (measure index, amount) pairs this event adds to its buckets."""
    out: list[tuple[int, Amount]] = []
    counted = COUNTED_BY_TYPE.get(event.type)
    if counted is not None:
        out.append((INDEX[counted], 1))
    money = AMOUNT_BY_TYPE.get(event.type)
    if money is not None and event.amount is not None:
        out.append((INDEX[money], event.amount))
    units = UNITS_BY_TYPE.get(event.type)
    if units is not None:
        out.append((INDEX[units], event.quantity if event.quantity is not None else 1))
    if event.type == "metric" and event.metric in SPEND_METRICS and event.value is not None:
        out.append((INDEX["spend"], event.value))
    return out
