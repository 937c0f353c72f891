"""Promotion-day events for the ingest benchmark: a realistic mix, encoded once and re-stamped with fresh ids.

Every ``event_id`` must be new (the server deduplicates on it), yet building
and JSON-encoding events would cost CPU that the load generator shares with
the server on a small machine. So events are encoded once into request
templates with fixed-width ids; each send only fills in a request number
(one ``bytes.join``, about 16 us for 500 events, against 550 us to rewrite
every id).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec

from app.campaigns import model as campaigns
from app.campaigns.model import Campaign
from app.core.settings import Settings
from app.ingest.events import Defaults, Row, decode_event

ID_DIGITS = 12
SAMPLE_SEED = 20261111
CAMPAIGN = "double11-2026"
CAMPAIGN_FILE = Path(__file__).resolve().parents[1] / "campaigns" / "double11-demo.yaml"
SHOP_TZ = timezone(timedelta(hours=8))
MAX_CLOCK_LAG_S = 5.0
"""Events claim to have happened up to this long before they were generated, as from a real client queue."""

TYPE_WEIGHTS: dict[str, int] = {
    "visit": 20,
    "page_view": 14,
    "product_view": 28,
    "add_to_cart": 12,
    "checkout": 5,
    "order_created": 7,
    "order_paid": 6,
    "order_cancelled": 1,
    "refund": 1,
    "stock_level": 3,
    "stock_adjust": 2,
    "metric": 1,
}
ORDER_TYPES = frozenset({"order_created", "order_paid", "order_cancelled", "refund"})
SKU_TYPES = frozenset({"product_view", "add_to_cart", "stock_level", "stock_adjust"})
QUANTITY_TYPES = frozenset({"add_to_cart", "order_created", "order_paid"})
CHANNELS = ("tmall", "jd", "douyin", "app", "web", "wechat")
DEVICES = ("iPhone15,3", "iPhone14,2", "SM-S9180", "Mi 13", "HUAWEI P60", "Pixel 8", "MacBookPro18,1", "Windows")
REGIONS = ("CN-SH", "CN-BJ", "CN-GD", "CN-ZJ", "CN-JS", "CN-SC", "CN-HB", "CN-FJ")
QUERIES = ("running+shoes", "air+fryer", "face+cream", "robot+vacuum", "noise+cancelling", "down+jacket")
MEDIUMS = ("cpc", "feed", "live", "push", "sms", "organic")
AB_GROUPS = ("control", "exp-price-a", "exp-price-b", "exp-checkout-b")
SKU_COUNT = 5_000
USER_COUNT = 200_000
WAREHOUSES = ("wh-sh", "wh-bj", "wh-gz", "wh-cd")


def campaign() -> Campaign:
    """The campaign the events name, as defined for a run (the engine counts only defined campaigns): the demo's
    phases and catalog under ``CAMPAIGN``; the workload's own SKUs are past its catalog, as a real night's long tail."""
    return msgspec.structs.replace(campaigns.load_file(CAMPAIGN_FILE), id=CAMPAIGN, baseline=None)


def event_id(prefix: str, number: int) -> str:
    """A time-ordered unique id: ``<prefix>-<zero-padded number>``, always the same width for a prefix."""
    return f"{prefix}-{number:0{ID_DIGITS}d}"


def _props(rng: random.Random, channel: str) -> dict[str, Any]:
    """About 270 bytes of free-form attributes, as a web or app SDK sends them."""
    return {
        "page": f"/venue/double11/hall-{rng.randrange(1, 40):02d}/floor-{rng.randrange(1, 9)}",
        "referrer": f"https://m.{channel}.example.cn/search?q={rng.choice(QUERIES)}&pos={rng.randrange(1, 200)}",
        "device": rng.choice(DEVICES),
        "app_version": f"8.{rng.randrange(20)}.{rng.randrange(10)}",
        "locale": "zh-CN",
        "region": rng.choice(REGIONS),
        "ab_group": rng.choice(AB_GROUPS),
        "utm": {"source": channel, "medium": rng.choice(MEDIUMS), "campaign": f"d11-wave-{rng.randrange(1, 6)}"},
    }


def _event(rng: random.Random, event_type: str, occurred_at: datetime) -> dict[str, Any]:
    """One event of ``event_type`` without its ``event_id`` (that is stamped in per send)."""
    channel = rng.choice(CHANNELS)
    user = rng.randrange(USER_COUNT)
    event: dict[str, Any] = {
        "type": event_type,
        "occurred_at": occurred_at.isoformat(timespec="milliseconds"),
        "campaign": CAMPAIGN,
        "channel": channel,
    }
    if event_type == "metric":
        event.update(metric="ad_spend", value=round(rng.uniform(100, 20_000), 2), labels={"channel": channel})
        return event
    if event_type not in {"stock_level", "stock_adjust"}:
        event["user_id"] = f"u-{user:07d}"
        event["anonymous_id"] = f"{rng.getrandbits(128):032x}"
        event["session_id"] = f"s-{user:07d}-{rng.randrange(1 << 32):08x}"
    if event_type in ORDER_TYPES:
        event["order_id"] = f"o-2026-{rng.randrange(10**9):09d}"
        event["amount"] = round(rng.uniform(9.9, 3_000), 2)
        event["currency"] = "CNY"
    if event_type in SKU_TYPES or event_type in ORDER_TYPES:
        event["sku"] = f"SKU-{rng.randrange(SKU_COUNT):05d}"
    if event_type in QUANTITY_TYPES:
        event["quantity"] = rng.randrange(1, 4)
    if event_type == "stock_level":
        event.update(warehouse=rng.choice(WAREHOUSES), quantity=rng.randrange(0, 5_000))
    elif event_type == "stock_adjust":
        event.update(warehouse=rng.choice(WAREHOUSES), quantity=-rng.randrange(1, 20))
    else:
        event["props"] = _props(rng, channel)
    return event


def sample_events(count: int, seed: int = SAMPLE_SEED) -> list[dict[str, Any]]:
    """``count`` events in the ``TYPE_WEIGHTS`` mix, reproducible for a given seed."""
    rng = random.Random(seed)
    now = datetime.now(SHOP_TZ)
    types = rng.choices(list(TYPE_WEIGHTS), weights=list(TYPE_WEIGHTS.values()), k=count)
    return [_event(rng, t, now - timedelta(seconds=rng.uniform(0, MAX_CLOCK_LAG_S))) for t in types]


def encode(events: Sequence[dict[str, Any]], ids: Sequence[str], batch: bool) -> bytes:
    """The JSON body posting ``events`` with ``ids``: ``{"events": [...]}``, or one bare event."""
    with_ids = [{"event_id": id_, **event} for id_, event in zip(ids, events, strict=True)]
    return msgspec.json.encode({"events": with_ids} if batch else with_ids[0])


def storage_tails(events: Sequence[dict[str, Any]]) -> list[Row]:
    """The rows the server would store for ``events`` (through its own validation), minus the leading event_id."""
    settings = Settings.from_env({})
    defaults = Defaults(campaign=settings.default_campaign, currency=settings.default_currency)
    now = datetime.now(UTC)
    tails: list[Row] = []
    for event in events:
        row, errors = decode_event(encode([event], [event_id("row", 0)], batch=False), now, defaults)
        if row is None:
            raise ValueError(f"benchmark event rejected by the server's validation: {errors}")
        tails.append(row[1:])
    return tails


def copy_batch(prefix: str, first: int, count: int, tails: Sequence[Row]) -> list[Row]:
    """``count`` storage rows with ids ``first``.. under ``prefix``, cycling through ``tails``."""
    pattern = f"{prefix}-%0{ID_DIGITS}d"
    size = len(tails)
    return [(pattern % n,) + tails[n % size] for n in range(first, first + count)]


class StampedRequest:
    """A pre-encoded HTTP request whose event ids change per send in one request-number field only.

    Event ``slot`` of send ``r`` gets the id ``event_id(prefix, r * 10**slot_digits + slot)``:
    unique, increasing with ``r``, and as wide as the placeholder, so Content-Length
    never changes and rendering is a single ``bytes.join``.
    """

    def __init__(
        self, prefix: str, events: Sequence[dict[str, Any]], batch: bool, wrap: Callable[[bytes], bytes]
    ) -> None:
        """``wrap`` turns the JSON body into the full request bytes (request line, headers, body)."""
        self.events = len(events)
        self.slot_digits = len(str(self.events - 1))
        self._number_digits = ID_DIGITS - self.slot_digits
        marker = "#" * self._number_digits
        ids = [f"{prefix}-{marker}{slot:0{self.slot_digits}d}" for slot in range(self.events)]
        self._pieces = wrap(encode(events, ids, batch)).split(marker.encode())
        if len(self._pieces) != self.events + 1:
            raise ValueError("the id marker also occurs outside the event ids")

    def render(self, number: int) -> bytes:
        """The request as sent for the ``number``-th time."""
        return (b"%0*d" % (self._number_digits, number)).join(self._pieces)


def stamped(templates: Sequence[StampedRequest], count: int) -> Iterator[bytes]:
    """``count`` requests cycling through ``templates`` (which share one id prefix), none repeating an id."""
    if len({template.slot_digits for template in templates}) != 1:
        raise ValueError("templates sharing an id prefix must hold equally many events")
    for number in range(count):
        yield templates[number % len(templates)].render(number)
