"""The metrics engine: events in (in ``seq`` order), per-campaign numbers out. Pure: no I/O, clock passed in.

State is bounded by keys — campaigns, channels, SKUs, categories, active
minutes, the last hour of seconds, named metric series — never by the
number of events (see README "Memory"). The whole state pickles into a
checkpoint, so a restart resumes from the checkpoint and the events stored
after it, with the same numbers and intact history curves.
"""

from __future__ import annotations

import bisect
import json
import logging
import pickle
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from app.campaigns.clock import CampaignClock, campaign_clock, night_is_on
from app.campaigns.model import Campaign
from app.ingest.events import DEFAULT_WAREHOUSE
from app.metrics import funnel as funnel_math
from app.metrics import pacing as pacing_math
from app.metrics.customers import KnownBuyers
from app.metrics.measures import AMOUNT_BY_TYPE, INDEX, MEASURES, MONEY, Amount, Event, contributions
from app.metrics.series import ITEM_SECONDS_KEPT, SECONDS_KEPT, Series
from app.metrics.snapshot import (
    ChannelRow,
    KeyLimit,
    Measures,
    MetricReading,
    NextPhase,
    SeriesLine,
    SkuRow,
    Snapshot,
    Totals,
    Unconverted,
)
from app.metrics.stock import MAX_WAREHOUSES, SALE_TYPES, SkuStock, sell_out_eta_minutes, sell_through
from app.metrics.undefined import UndefinedCampaigns
from app.metrics.visitors import DistinctCounter, hash64

log = logging.getLogger(__name__)

STATE_VERSION = 6
"""5: state only for defined campaigns (the others counted per name), events past a key limit counted per kind,
amounts in a currency without a rate kept apart."""
HEAVY_HITTERS = 50
"""Counters per minute in the Misra-Gries summary of who pays (brushing detection)."""
TOP_BUYERS = 5
BUYER_MINUTES_KEPT = 60
MAX_CHANNELS = 200
MAX_SKUS = 20_000
MAX_METRIC_SERIES = 1_000
MAX_CURRENCIES = 32
"""Currencies without a rate reported apart per campaign (``unconverted``)."""
KEY_LIMITS: dict[str, int] = {
    "channel": MAX_CHANNELS,
    "sku": MAX_SKUS,
    "category": MAX_SKUS,
    "metric": MAX_METRIC_SERIES,
    "stock_sku": MAX_SKUS,
    "warehouse": MAX_WAREHOUSES,
    "currency": MAX_CURRENCIES,
}
"""Keys of each kind one campaign keeps. Past its limit, a new channel, SKU or category is counted under
``(other)`` (totals stay right, the breakdown loses it); a new metric series, stock SKU or warehouse is not
kept at all. Either way the event is counted per kind (snapshot ``key_limits``, ``/metrics``, the wall)
and logged at the 1st, 10th, 100th… such event."""
SELL_RATE_WINDOW_S = 300
NO_CHANNEL = "(none)"
OTHER = "(other)"

TOTAL = ""
VISITOR_TYPES = frozenset(
    {"visit", "page_view", "product_view", "add_to_cart", "checkout", "order_created", "order_paid"}
)
"""Events whose user is counted in UV: traffic and orders (a buyer is a visitor, so conversion stays ≤ 100%)."""
STOCK_TYPES = frozenset({"stock_level", "stock_adjust"})
NEVER = -(2**62)
"""``newest_second`` before the first event."""
MAX_ROUTES = 100_000
"""Memoized (channel, SKU) → series lookups across campaigns; past this (or when a key fell into
``(other)``), an event's series are looked up each time."""

DERIVED: dict[str, tuple[str, str]] = {
    "conversion_rate": ("orders_paid", "visits"),
    "payment_rate": ("orders_paid", "orders_created"),
    "order_rate": ("orders_created", "checkouts"),
    "aov": ("gmv_paid", "orders_paid"),
    "uv_value": ("gmv_paid", "visits"),
    "refund_rate": ("refunds", "orders_paid"),
    "cart_rate": ("add_to_cart", "product_views"),
}
"""Per-bucket ratios for series and rules (per bucket, visits stand in for distinct visitors)."""

SERIES_METRICS = (*MEASURES, *DERIVED)
WINDOW_METRICS = (*SERIES_METRICS, "top_buyer_share")
"""What rules can watch over a window (plus metric:<name> and the stock/pacing point-in-time values)."""


def _number(value: Amount) -> float:
    return float(value) if isinstance(value, Decimal) else value


def _ratio(numerator: Amount, denominator: Amount) -> float | None:
    d = _number(denominator)
    return _number(numerator) / d if d else None


def _distinct(counters: dict[str, DistinctCounter], channel: str) -> DistinctCounter:
    counter = counters.get(channel)
    if counter is None:
        counter = counters[channel] = DistinctCounter()
    return counter


def _count_distinct(counters: dict[str, DistinctCounter], channel: str, value: str) -> None:
    """Count ``value`` in the total and in its channel, hashing it once when either counter is approximate."""
    total, per_channel = _distinct(counters, TOTAL), _distinct(counters, channel)
    hashed = None if total.exact and per_channel.exact else hash64(value)
    total.add(value, hashed)
    per_channel.add(value, hashed)


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch is not None else None


class _Route(NamedTuple):
    """Where one (channel, SKU) pair is counted, after the key limits."""

    series: tuple[Series, ...]
    channel: str
    """The channel's label in the series and distinct counters: its own, or ``(other)`` past MAX_CHANNELS."""
    capped: tuple[str, ...]
    """The kinds of the event's keys that fell into ``(other)`` (counted in ``capped`` per event)."""


@dataclass(slots=True)
class MetricSeries:
    """One named series from ``metric`` events: per-minute sum and count, and the latest value."""

    name: str
    labels: dict[str, str]
    minutes: dict[int, list[float]] = field(default_factory=dict)
    seconds: dict[int, list[float]] = field(default_factory=dict)
    last: float | None = None
    last_at: float = float("-inf")

    def add(self, value: float, at: float, keep_second: bool) -> None:
        for buckets, key, keep in ((self.minutes, int(at // 60), True), (self.seconds, int(at), keep_second)):
            if keep:
                bucket = buckets.setdefault(key, [0.0, 0])
                bucket[0] += value
                bucket[1] += 1
        if at >= self.last_at:
            self.last, self.last_at = value, at


@dataclass(slots=True)
class CampaignState:
    dims: dict[str, Series] = field(default_factory=lambda: {TOTAL: Series()})
    visitors: dict[str, DistinctCounter] = field(default_factory=lambda: {TOTAL: DistinctCounter()})
    buyers: dict[str, DistinctCounter] = field(default_factory=lambda: {TOTAL: DistinctCounter()})
    new_customers: dict[str, int] = field(default_factory=dict)
    stock: dict[str, SkuStock] = field(default_factory=dict)
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], MetricSeries] = field(default_factory=dict)
    events: int = 0
    late_events: int = 0
    capped: dict[str, int] = field(default_factory=dict)
    """Events per key kind that met its limit in ``KEY_LIMITS``."""
    unconverted: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per currency without a rate: its events and their amounts per money measure, kept out of GMV."""
    newest_second: int = NEVER
    buyers_by_minute: dict[int, dict[str, int]] = field(default_factory=dict)
    """Per minute, a Misra-Gries summary (at most HEAVY_HITTERS counters) of paid orders by buyer."""
    version: int = 0
    first_event_at: float | None = None
    last_event_at: float | None = None
    watermark: float | None = None
    """The latest ``watermark`` event's time: set, the campaign is a replay running on event time."""

    def series(self, dim: str) -> Series | None:
        return self.dims.get(dim)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k[len(prefix) :] for k in self.dims if k.startswith(prefix))


class Engine:
    """Aggregates the events of defined campaigns. Feed ``apply`` in ``seq`` order; read with ``snapshot``/``series``.

    Only a defined campaign has state; events naming any other are counted per name in ``undefined``.
    A campaign defined after some of its events were applied is ``pending``: its events are skipped by
    ``apply`` until ``replay`` has fed it every stored one up to ``last_seq`` (the edge reads them).
    """

    def __init__(self, campaigns: Iterable[Campaign] = ()) -> None:
        self.campaigns: dict[str, Campaign] = {}
        self.states: dict[str, CampaignState] = {}
        self.known_buyers = KnownBuyers()
        self.last_seq = 0
        self.undefined = UndefinedCampaigns()
        self.counted: set[str] = set()
        """Defined campaigns whose every event up to ``last_seq`` is in ``states``."""
        self.pending: dict[str, int] = {}
        """Defined campaigns still to replay, each with the last ``seq`` replayed into it."""
        self._cumulative_cache: dict[tuple[str, int, int], tuple[list[int], list[float]]] = {}
        self._categories: dict[str, dict[str, str]] = {}
        self._money: dict[str, tuple[str, dict[str, Decimal]]] = {}
        """Per campaign: its currency and exchange rates."""
        self._key_counts: dict[tuple[str, str], int] = {}
        """Keys per (campaign, kind) in ``dims``, so a new key is checked against its limit without a scan."""
        self._routes: dict[str, dict[tuple[str, str | None], _Route]] = {}
        self._route_count = 0
        self.configure(campaigns)

    def configure(self, campaigns: Iterable[Campaign]) -> None:
        """Replace the campaign definitions (targets, catalog, phases).

        A redefined campaign keeps its numbers; a campaign no longer defined loses its state (its events
        stay stored); a newly defined one is counted from its stored events: at once when nothing was
        applied yet, else through ``replay``.
        """
        self.campaigns = {c.id: c for c in campaigns}
        self._categories = {c.id: {s.sku: s.category for s in c.skus} for c in self.campaigns.values()}
        self._money = {c.id: (c.currency, c.exchange_rates) for c in self.campaigns.values()}
        self._routes.clear()
        self._route_count = 0
        self._key_counts.clear()
        self._cumulative_cache.clear()
        for gone in (self.counted | set(self.pending)) - set(self.campaigns):
            self.counted.discard(gone)
            self.pending.pop(gone, None)
            self.states.pop(gone, None)
        for new in set(self.campaigns) - self.counted - set(self.pending):
            self.undefined.forget(new)
            if self.last_seq:
                self.pending[new] = 0
            else:
                self.counted.add(new)

    # ---- ingest side ---------------------------------------------------------------------------

    def apply(self, events: Iterable[Event]) -> set[str]:
        """Add events (already committed, in seq order); return the ids of campaigns that changed."""
        changed: set[str] = set()
        counted = self.counted
        for event in events:
            if event.seq <= self.last_seq:
                continue
            self.last_seq = event.seq
            campaign_id = event.campaign
            if campaign_id in counted:
                state = self.states.get(campaign_id)
                if state is None:
                    state = self.states[campaign_id] = CampaignState()
                self._apply(state, event)
                changed.add(campaign_id)
            elif campaign_id not in self.pending:
                self.undefined.add(campaign_id)
        return changed

    def replay(self, campaign_ids: Iterable[str], events: Iterable[Event], through: int, after: int = 0) -> set[str]:
        """Feed pending campaigns their stored events (``seq`` order, at most ``last_seq``); return those changed.

        ``events`` holds every stored event of ``campaign_ids`` with ``after < seq <= through``. A campaign
        whose cursor is below ``after`` (defined again while the events were read) is not covered by
        them and is left as it is. A campaign replayed up to ``last_seq`` is counted from then on.
        """
        changed: set[str] = set()
        pending = self.pending
        covered = {c for c in campaign_ids if pending.get(c, -1) >= after}
        for event in events:
            cursor = pending.get(event.campaign)
            if event.campaign not in covered or cursor is None or event.seq <= cursor or event.seq > self.last_seq:
                continue
            state = self.states.get(event.campaign)
            if state is None:
                state = self.states[event.campaign] = CampaignState()
            self._apply(state, event)
            pending[event.campaign] = event.seq
            changed.add(event.campaign)
        for campaign_id in covered:
            if campaign_id in pending:
                pending[campaign_id] = max(pending[campaign_id], through)
                if pending[campaign_id] >= self.last_seq:
                    del pending[campaign_id]
                    self.counted.add(campaign_id)
                    changed.add(campaign_id)
        return changed

    @staticmethod
    def _capped(campaign_id: str, state: CampaignState, kind: str) -> None:
        """One event met ``kind``'s key limit: counted, and logged at the 1st, 10th, 100th… time."""
        count = state.capped[kind] = state.capped.get(kind, 0) + 1
        if count == 10 ** (len(str(count)) - 1):
            log.warning(
                "campaign %s: more %s keys than the limit of %d; %d events so far past it (%s)",
                campaign_id,
                kind,
                KEY_LIMITS[kind],
                count,
                "counted under (other)" if kind in ("channel", "sku", "category") else "not kept",
            )

    def _dimension(self, campaign_id: str, state: CampaignState, kind: str, label: str) -> tuple[str, Series]:
        """The (label, series) of ``kind:label``; past the kind's limit, new labels share ``(other)``."""
        series = state.dims.get(f"{kind}:{label}")
        if series is None:
            limit = MAX_SKUS if kind in ("sku", "category") else MAX_CHANNELS
            count_key = (campaign_id, kind)
            count = self._key_counts.get(count_key)
            if count is None:  # first new key of this kind since start or load: count the existing ones once
                count = sum(1 for k in state.dims if k.startswith(kind + ":"))
            if count >= limit:
                label = OTHER
                series = state.dims.get(f"{kind}:{label}")
                if series is not None:
                    return label, series
            self._key_counts[count_key] = count + 1
            series = state.dims[f"{kind}:{label}"] = Series(
                ITEM_SECONDS_KEPT if kind in ("sku", "category") else SECONDS_KEPT
            )
        return label, series

    def _apply(self, state: CampaignState, event: Event) -> None:
        state.events += 1
        state.version += 1
        at = event.occurred_at
        if event.type == "watermark":
            state.watermark = at if state.watermark is None else max(state.watermark, at)
            return
        second = int(at // 1)
        newest = state.newest_second
        if second > newest:
            if second // 60 > newest // 60 and newest > NEVER:
                self._prune_seconds(state, second)
            state.newest_second = newest = second
        elif second // 60 < newest // 60:
            state.late_events += 1
        keep_second = second > newest - SECONDS_KEPT
        last_event_at = state.last_event_at
        if last_event_at is None or at > last_event_at:
            state.last_event_at = at
            if last_event_at is None:
                state.first_event_at = at
        elif at < state.first_event_at:  # type: ignore[operator]
            state.first_event_at = at

        event_type = event.type
        if event.currency is not None and event.amount is not None and event_type in AMOUNT_BY_TYPE:
            currency, rates = self._money[event.campaign]
            if event.currency != currency:
                event = self._in_currency(state, event, rates)
        adds = contributions(event)
        route = self._route(event.campaign, state, event.channel or NO_CHANNEL, event.sku) if adds else None
        channel = route.channel if route is not None else OTHER
        if event_type in VISITOR_TYPES:
            visitor = event.user_id or event.anonymous_id
            if visitor:
                _count_distinct(state.visitors, channel, visitor)
        if event_type == "order_paid":
            buyer = event.user_id or event.anonymous_id
            if buyer:
                self._count_buyer(state, second // 60, buyer)
                _count_distinct(state.buyers, channel, buyer)
                if self.known_buyers.add(buyer):
                    new = state.new_customers
                    new[TOTAL] = new.get(TOTAL, 0) + 1
                    new[channel] = new.get(channel, 0) + 1
        elif event_type == "metric":
            self._apply_metric(state, event, keep_second)
        elif event_type in STOCK_TYPES and event.sku:
            self._apply_stock(state, event)
        if event_type in SALE_TYPES and event.sku:
            self._apply_sale(state, event, second, keep_second)

        if route is not None:
            for series in route.series:
                series.add(second, newest, adds)

    def _in_currency(self, state: CampaignState, event: Event, rates: dict[str, Decimal]) -> Event:
        """The event with its amount converted at the campaign's rate; without a rate, with no amount (the
        order still counts) and the amount reported apart in ``unconverted``: never added as is."""
        code, amount = event.currency, event.amount
        assert code is not None and amount is not None
        rate = rates.get(code)
        if rate is not None:
            return event._replace(amount=amount * rate)
        totals = state.unconverted.get(code)
        if totals is None:
            if len(state.unconverted) >= MAX_CURRENCIES:
                self._capped(event.campaign, state, "currency")
                return event._replace(amount=None)
            totals = state.unconverted[code] = {"events": 0, **{name: Decimal(0) for name in sorted(MONEY)}}
        totals["events"] += 1
        totals[AMOUNT_BY_TYPE[event.type]] += amount
        return event._replace(amount=None)

    @staticmethod
    def _prune_seconds(state: CampaignState, newest: int) -> None:
        oldest = newest - SECONDS_KEPT
        for series in state.dims.values():
            series.prune_seconds(newest)
        for metric in state.metrics.values():
            for key in [k for k in metric.seconds if k < oldest]:
                del metric.seconds[key]
        for stock in state.stock.values():
            stock.coarsen(oldest)

    def _route(self, campaign_id: str, state: CampaignState, channel: str, sku: str | None) -> _Route:
        """Where an event is counted: the total, its channel, its SKU and the SKU's category (memoized)."""
        routes = self._routes.get(campaign_id)
        if routes is None:
            routes = self._routes[campaign_id] = {}
        route = routes.get((channel, sku))
        if route is None:
            channel_label, channel_series = self._dimension(campaign_id, state, "channel", channel)
            found = [state.dims[TOTAL], channel_series]
            capped: tuple[str, ...] = ("channel",) if channel_label != channel else ()
            if sku:
                label, series = self._dimension(campaign_id, state, "sku", sku)
                found.append(series)
                capped += ("sku",) if label != sku else ()
                category = self._categories.get(campaign_id, {}).get(sku)
                if category:
                    label, series = self._dimension(campaign_id, state, "category", category)
                    found.append(series)
                    capped += ("category",) if label != category else ()
            route = _Route(tuple(found), channel_label, capped)
            if not capped and self._route_count < MAX_ROUTES:
                routes[(channel, sku)] = route
                self._route_count += 1
        for kind in route.capped:
            self._capped(campaign_id, state, kind)
        return route

    @staticmethod
    def _count_buyer(state: CampaignState, minute: int, buyer: str) -> None:
        if minute <= state.newest_second // 60 - BUYER_MINUTES_KEPT:
            return
        counters = state.buyers_by_minute.get(minute)
        if counters is None:
            counters = state.buyers_by_minute[minute] = {}
            for old in [m for m in state.buyers_by_minute if m <= minute - BUYER_MINUTES_KEPT]:
                del state.buyers_by_minute[old]
        if buyer in counters:
            counters[buyer] += 1
        elif len(counters) < HEAVY_HITTERS:
            counters[buyer] = 1
        else:
            for key in list(counters):
                counters[key] -= 1
                if not counters[key]:
                    del counters[key]

    def top_buyer_share(self, campaign_id: str, start: float, end: float) -> float | None:
        """Share of paid orders in [start, end) placed by the TOP_BUYERS most frequent buyers (a lower bound)."""
        state = self.states.get(campaign_id)
        if state is None:
            return None
        first, last = int(start // 60), int((end - 1) // 60)
        merged: dict[str, int] = {}
        orders = 0
        for minute in range(first, last + 1):
            for buyer, count in state.buyers_by_minute.get(minute, {}).items():
                merged[buyer] = merged.get(buyer, 0) + count
            bucket = state.dims[TOTAL].minutes.get(minute)
            orders += int(bucket[INDEX["orders_paid"]]) if bucket else 0
        if not orders:
            return None
        return sum(sorted(merged.values(), reverse=True)[:TOP_BUYERS]) / orders

    def _apply_metric(self, state: CampaignState, event: Event, keep_second: bool) -> None:
        if event.metric is None or event.value is None:
            return
        labels = tuple(sorted(json.loads(event.labels).items())) if event.labels else ()
        key = (event.metric, labels)
        series = state.metrics.get(key)
        if series is None:
            if len(state.metrics) >= MAX_METRIC_SERIES:
                self._capped(event.campaign, state, "metric")
                return
            series = state.metrics[key] = MetricSeries(event.metric, dict(labels))
        series.add(event.value, event.occurred_at, keep_second)

    def _sku_stock(self, state: CampaignState, event: Event) -> SkuStock | None:
        stock = state.stock.get(event.sku)  # type: ignore[arg-type]
        if stock is None:
            if len(state.stock) >= MAX_SKUS:
                self._capped(event.campaign, state, "stock_sku")
                return None
            stock = state.stock[event.sku] = SkuStock()  # type: ignore[index]
        return stock

    def _apply_stock(self, state: CampaignState, event: Event) -> None:
        sku = self._sku_stock(state, event)
        if sku is None:
            return
        warehouse = sku.warehouse(event.warehouse or DEFAULT_WAREHOUSE)
        if warehouse is None:
            self._capped(event.campaign, state, "warehouse")
            return
        if event.type == "stock_level":
            sku.set_level(warehouse, event.quantity or 0, event.occurred_at)
        else:
            warehouse.adjust(event.quantity or 0, event.occurred_at)

    def _apply_sale(self, state: CampaignState, event: Event, second: int, keep_second: bool) -> None:
        """Sales are kept for stock whatever the campaign deducts on, so a redefined campaign reads the right kind."""
        sku = self._sku_stock(state, event)
        if sku is not None:
            units = event.quantity if event.quantity is not None else 1
            sku.sell(event.warehouse, SALE_TYPES.index(event.type), units, second, keep_second)

    # ---- read side -----------------------------------------------------------------------------

    def _cumulative(self, campaign_id: str, measure: str, until: float) -> float:
        """A campaign's total of ``measure`` over events that occurred before ``until``: whole minutes from a
        running sum, the minute ``until`` falls in exactly where its seconds are kept and pro rata elsewhere, so
        the total moves smoothly through a burst."""
        state = self.states.get(campaign_id)
        if state is None:
            return 0.0
        cache_key = (campaign_id, INDEX[measure], state.version)
        cached = self._cumulative_cache.get(cache_key)
        if cached is None:
            minutes = sorted(state.dims[TOTAL].minutes)
            running, prefix = 0.0, []
            for minute in minutes:
                running += _number(state.dims[TOTAL].minutes[minute][INDEX[measure]])
                prefix.append(running)
            cached = (minutes, prefix)
            if len(self._cumulative_cache) > 256:
                self._cumulative_cache.clear()
            self._cumulative_cache[cache_key] = cached
        minutes, prefix = cached
        minute = int(until // 60)
        position = bisect.bisect_left(minutes, minute)
        whole = prefix[position - 1] if position else 0.0
        if position == len(minutes) or minutes[position] != minute:
            return whole
        return whole + state.dims[TOTAL].between(INDEX[measure], minute * 60, int(until), state.newest_second)

    def clock(self, campaign_id: str, wall: float) -> CampaignClock:
        """The campaign's clock at wall time ``wall``: event time for a replay, the wall clock for a live night."""
        state = self.states.get(campaign_id)
        return campaign_clock(state.watermark if state is not None else None, wall)

    def judged(self, campaign_id: str, clock: CampaignClock) -> bool:
        """Whether the rules judge this campaign now: it is defined, every stored event of it is counted, its
        night is on at ``clock``, and it is nobody's baseline (last year's night is history, not an incident)."""
        campaign = self.campaigns.get(campaign_id)
        if campaign is None or campaign_id in self.pending or not night_is_on(campaign, clock):
            return False
        return all(other.baseline != campaign_id for other in self.campaigns.values())

    def reached(self, campaign_id: str, moment: float, wall: float) -> bool:
        """Whether the campaign's counted events reach ``moment`` on its clock: a baseline still being replayed
        in is no reference past the point it has reached."""
        if campaign_id not in self.states or campaign_id in self.pending:
            return False
        return self.clock(campaign_id, wall).now >= moment

    def _loaded(self, baseline: str | None, wall: float) -> bool:
        """Whether the baseline's whole night is counted: its clock has passed its end (a finished live night, or a
        replay whose sender closed it with a watermark at its end), so its final totals are known."""
        definition = self.campaigns.get(baseline or "")
        return definition is not None and self.reached(definition.id, definition.end.timestamp(), wall)

    def baseline_loaded(self, campaign: Campaign, wall: float) -> bool:
        """Whether the campaign's baseline night is wholly counted, so shares of its final total are final too."""
        return self._loaded(campaign.baseline, wall)

    def baseline_offset(self, campaign: Campaign) -> float | None:
        """Seconds to subtract from this campaign's clock to reach the same moment of its baseline."""
        baseline = self.campaigns.get(campaign.baseline or "")
        if baseline is None:
            return None
        return campaign.phases.burst.start.timestamp() - baseline.phases.burst.start.timestamp()

    def _sku_rows(self, campaign_id: str, state: CampaignState, now: float) -> list[SkuRow]:
        campaign = self.campaigns.get(campaign_id)
        catalog = {s.sku: s for s in campaign.skus} if campaign else {}
        kind = SALE_TYPES.index(campaign.stock_deducted_on if campaign else "order_paid")
        rows = []
        for sku in sorted(set(catalog) | set(state.stock) | set(state.keys("sku:")) - {OTHER}):
            series = state.dims.get(f"sku:{sku}")
            stock = state.stock.get(sku)
            sold = int(series.totals[INDEX["units_sold"]]) if series else 0
            rate = (
                float(series.window(INDEX["units_sold"], int(now) - SELL_RATE_WINDOW_S, int(now) + 1))
                * 60
                / SELL_RATE_WINDOW_S
                if series
                else 0.0
            )
            on_hand = stock.on_hand(kind) if stock is not None else None
            warehouses: dict[str, int] = {}
            unplaced = 0
            if stock is not None and on_hand is not None:
                warehouses, unplaced = stock.by_warehouse(kind), stock.unplaced.total[kind]
            info = catalog.get(sku)
            eta = sell_out_eta_minutes(on_hand, rate) if on_hand is not None else None
            rows.append(
                SkuRow(
                    sku=sku,
                    name=info.name if info else sku,
                    name_zh=info.name_zh if info else None,
                    category=info.category if info else None,
                    safety_stock=info.safety_stock if info else None,
                    warning_level=info.warning_level if info else None,
                    on_hand=on_hand,
                    warehouses=warehouses,
                    unplaced_sold=unplaced,
                    units_sold=sold,
                    product_views=int(series.totals[INDEX["product_views"]]) if series else 0,
                    add_to_cart=int(series.totals[INDEX["add_to_cart"]]) if series else 0,
                    gmv_paid=_number(series.totals[INDEX["gmv_paid"]]) if series else 0.0,
                    sell_rate_per_min=rate,
                    sell_out_eta_min=eta,
                    sell_out_at=_iso(now + eta * 60) if eta is not None else None,
                    sell_through=sell_through(sold, on_hand) if on_hand is not None else None,
                    sold_out=on_hand is not None and on_hand <= 0,
                    oversold=on_hand is not None and on_hand < 0,
                    below_warning=on_hand is not None and info is not None and on_hand < info.warning_level,
                    below_safety=on_hand is not None and info is not None and on_hand < info.safety_stock,
                )
            )
        return rows

    def skus(self, campaign_id: str, wall: float, sort: str = "eta") -> list[SkuRow]:
        """The stock table on the campaign's clock at wall time ``wall``; ``sort`` is ``eta`` (soonest sell-out
        first), ``sold`` or ``sku``."""
        return self.skus_at(campaign_id, self.clock(campaign_id, wall).now, sort)

    def skus_at(self, campaign_id: str, now: float, sort: str = "eta") -> list[SkuRow]:
        """The stock table as of ``now`` on the campaign's clock."""
        state = self.states.get(campaign_id)
        if state is None:
            return []
        rows = self._sku_rows(campaign_id, state, now)
        if sort == "eta":
            rows.sort(key=lambda r: (r.sell_out_eta_min is None, r.sell_out_eta_min or 0, r.sku))
        elif sort == "sold":
            rows.sort(key=lambda r: (-r.units_sold, r.sku))
        return rows

    def _kpis(self, state: CampaignState, key: str, totals: list[Amount]) -> Totals:
        t = {name: _number(totals[i]) for i, name in enumerate(MEASURES)}
        uv = state.visitors[key].count() if key in state.visitors else 0
        buyers = state.buyers[key].count() if key in state.buyers else 0
        new = state.new_customers.get(key, 0)
        return Totals(
            **t,
            uv=uv,
            pv=t["page_views"],
            buyers=buyers,
            aov=_ratio(t["gmv_paid"], t["orders_paid"]),
            conversion_rate=_ratio(buyers, uv),
            uv_value=_ratio(t["gmv_paid"], uv),
            refund_rate=_ratio(t["refunds"], t["orders_paid"]),
            payment_rate=_ratio(t["orders_paid"], t["orders_created"]),
            new_customers=new,
            repeat_rate=_ratio(buyers - new, buyers) if buyers else None,
            roi=_ratio(t["gmv_paid"], t["spend"]),
        )

    def snapshot(self, campaign_id: str, wall: float) -> Snapshot:
        """Every current number of one campaign on its clock at wall time ``wall`` (epoch seconds)."""
        clock = self.clock(campaign_id, wall)
        now = clock.now
        state = self.states.get(campaign_id) or CampaignState()
        campaign = self.campaigns.get(campaign_id)
        totals = self._kpis(state, TOTAL, state.dims[TOTAL].totals)
        baseline: Measures | None = None
        baseline_share = None
        offset = self.baseline_offset(campaign) if campaign else None
        awaiting = campaign is not None and offset is not None and not self._loaded(campaign.baseline, wall)
        if (
            campaign is not None
            and offset is not None
            and campaign.baseline is not None
            and self.reached(campaign.baseline, now - offset, wall)
        ):
            base_id = campaign.baseline
            assert base_id is not None
            baseline = Measures(**{m: self._cumulative(base_id, m, now - offset) for m in MEASURES})
            final = _number(self.states[base_id].dims[TOTAL].totals[INDEX["gmv_paid"]])
            baseline_share = baseline.gmv_paid / final if final and not awaiting else None
        moment = datetime.fromtimestamp(now, UTC)
        next_phase = None
        if campaign is not None:
            upcoming = [(p.start, name) for name, p in campaign.phases.items() if p.start > moment]
            if upcoming:
                next_phase = NextPhase(phase=min(upcoming)[1], starts_at=min(upcoming)[0].isoformat())
        channels = []
        for channel in state.keys("channel:"):
            kpis = self._kpis(state, channel, state.dims[f"channel:{channel}"].totals)
            channels.append(
                ChannelRow(
                    channel=channel,
                    gmv_paid=kpis.gmv_paid,
                    orders_paid=kpis.orders_paid,
                    uv=kpis.uv,
                    conversion_rate=kpis.conversion_rate,
                    visits=kpis.visits,
                    spend=kpis.spend,
                    roi=kpis.roi,
                )
            )
        channels.sort(key=lambda c: -c.gmv_paid)
        return Snapshot(
            campaign=campaign_id,
            name=campaign.name if campaign else campaign_id,
            name_zh=campaign.name_zh if campaign else None,
            timezone=campaign.timezone if campaign else "UTC",
            currency=campaign.currency if campaign else None,
            as_of=moment.isoformat(),
            clock=clock.mode,
            last_seq=self.last_seq,
            last_event_at=_iso(state.last_event_at),
            phase=campaign.phase_at(moment) if campaign else None,
            next_phase=next_phase,
            totals=totals,
            targets=_targets(campaign),
            pacing=pacing_math.pacing(campaign, totals.gmv_paid, now, baseline_share, awaiting),
            baseline=baseline,
            funnel=funnel_math.funnel(totals, baseline),
            channels=channels,
            skus=self.skus_at(campaign_id, now),
            metrics=[
                MetricReading(
                    metric=m.name,
                    labels=m.labels,
                    last=m.last,
                    last_at=_iso(m.last_at if m.last is not None else None),
                )
                for m in state.metrics.values()
            ],
            events=state.events,
            late_events=state.late_events,
            dropped_keys=sum(state.capped.values()),
            key_limits=[
                KeyLimit(key=kind, limit=KEY_LIMITS[kind], events=count) for kind, count in sorted(state.capped.items())
            ],
            replaying=campaign_id in self.pending,
            unconverted={
                code: Unconverted(
                    events=amounts["events"],
                    gmv_created=_number(amounts["gmv_created"]),
                    gmv_paid=_number(amounts["gmv_paid"]),
                    refund_amount=_number(amounts["refund_amount"]),
                )
                for code, amounts in sorted(state.unconverted.items())
            },
        )

    def labels(self, campaign_id: str, by: str) -> list[str]:
        """The channels, SKUs or categories a campaign has seen (SKUs from its catalog too)."""
        state = self.states.get(campaign_id)
        seen = set(state.keys(f"{by}:")) if state else set()
        campaign = self.campaigns.get(campaign_id)
        if by == "sku":
            seen |= set(state.stock) if state else set()
            seen |= {s.sku for s in campaign.skus} if campaign else set()
        elif by == "category" and campaign:
            seen |= {s.category for s in campaign.skus}
        return sorted(seen - {OTHER})

    def window(
        self, campaign_id: str, metric: str, start: float, end: float, by: str | None = None, label: str | None = None
    ) -> float | None:
        """A metric over [start, end): a measure's sum, a ratio of sums, or a named metric's mean.

        None when undefined (a ratio over nothing, a named metric with no points).
        """
        state = self.states.get(campaign_id)
        if state is None:
            return None if metric in DERIVED or metric.startswith("metric:") else 0.0
        lo, hi, newest = int(start // 1), int(end // 1), state.newest_second
        if metric.startswith("metric:"):
            return self._metric_mean(state, metric[len("metric:") :], lo, hi, by, label)
        if metric == "top_buyer_share":
            return self.top_buyer_share(campaign_id, start, end) if by is None else None
        series = state.dims.get(TOTAL if by is None else f"{by}:{label}")
        if metric in DERIVED:
            if series is None:
                return None
            numerator, denominator = (series.between(INDEX[m], lo, hi, newest) for m in DERIVED[metric])
            return _ratio(numerator, denominator)
        return _number(series.between(INDEX[metric], lo, hi, newest)) if series else 0.0

    @staticmethod
    def _metric_mean(
        state: CampaignState, name: str, lo: int, hi: int, by: str | None, label: str | None
    ) -> float | None:
        total, count = 0.0, 0
        for series in state.metrics.values():
            if series.name != name or (by is not None and series.labels.get(by) != label):
                continue
            use_seconds = lo >= state.newest_second - SECONDS_KEPT
            buckets = series.seconds if use_seconds else series.minutes
            keys = range(lo, hi) if use_seconds else range(lo // 60, (hi - 1) // 60 + 1)
            for key in keys:
                bucket = buckets.get(key)
                if bucket is not None:
                    total += bucket[0]
                    count += int(bucket[1])
        return total / count if count else None

    def series(
        self, campaign_id: str, metric: str, step: int, start: float, end: float, by: str | None = None
    ) -> list[SeriesLine]:
        """Bucketed values of ``metric`` ([start, end), step 1 or 60 s), overall or one series per
        channel/SKU/category."""
        state = self.states.get(campaign_id)
        if state is None:
            return []
        if metric.startswith("metric:"):
            return self._metric_series(state, metric[len("metric:") :], step, start, end)
        dims = [(None, TOTAL)] if by is None else [(k, f"{by}:{k}") for k in state.keys(f"{by}:")]
        out = []
        for key, dim in dims:
            series = state.dims[dim]
            if metric in DERIVED:
                numerator, denominator = (INDEX[m] for m in DERIVED[metric])
                buckets = series.seconds if step == 1 else series.minutes
                points = [
                    (k * step, _ratio(b[numerator], b[denominator]))
                    for k, b in sorted(buckets.items())
                    if start <= k * step < end
                ]
            else:
                points = [(t, _number(v)) for t, v in series.points(INDEX[metric], step, int(start), int(end))]
            out.append(SeriesLine(key=key, points=[[_iso(t), v] for t, v in points]))
        return out

    @staticmethod
    def _metric_series(state: CampaignState, name: str, step: int, start: float, end: float) -> list[SeriesLine]:
        out = []
        for series in state.metrics.values():
            if series.name != name:
                continue
            buckets = series.seconds if step == 1 else series.minutes
            points = [
                [_iso(k * step), b[0] / b[1] if b[1] else None, b[0], b[1]]
                for k, b in sorted(buckets.items())
                if start <= k * step < end
            ]
            out.append(SeriesLine(key=series.labels, points=points, columns=["t", "mean", "sum", "count"]))
        return out

    # ---- checkpoints ---------------------------------------------------------------------------

    def dump(self) -> bytes:
        """The aggregated state (not the campaign definitions), for a checkpoint."""
        return pickle.dumps(
            (STATE_VERSION, self.last_seq, self.states, self.known_buyers, self.undefined, self.counted, self.pending),
            protocol=5,
        )

    @classmethod
    def load(cls, data: bytes, campaigns: Iterable[Campaign]) -> Engine:
        """The checkpointed state under today's definitions (a campaign defined since is replayed)."""
        version, *rest = pickle.loads(data)
        if version != STATE_VERSION:
            raise ValueError(f"checkpoint has state version {version}, this engine reads {STATE_VERSION}")
        engine = cls()
        engine.last_seq, engine.states, engine.known_buyers, engine.undefined, engine.counted, engine.pending = rest
        engine.configure(campaigns)
        return engine


def _targets(campaign: Campaign | None) -> dict[str, float | None]:
    if campaign is None:
        return {}
    t = campaign.targets
    return {k: getattr(t, k) for k in t.__struct_fields__}
