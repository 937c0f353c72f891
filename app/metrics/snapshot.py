"""What the engine answers, as typed structures: a campaign's snapshot and its parts, a SKU row, a series.

msgspec Structs, like the events they are computed from: the pure core stays free of web frameworks,
readers (the wall, rule evaluation, the API) get attributes a type checker follows, and the same
classes encode to JSON and describe it in ``/openapi.json`` (``app/api/schemas.py``). Field order is
the JSON key order.
"""

from __future__ import annotations

import msgspec

from app.campaigns.clock import ClockMode


class Measures(msgspec.Struct):
    """One value per measure (``app.metrics.measures.MEASURES``): counts, money (as floats) and spend."""

    visits: float
    page_views: float
    product_views: float
    add_to_cart: float
    checkouts: float
    orders_created: float
    gmv_created: float
    orders_paid: float
    gmv_paid: float
    orders_cancelled: float
    refunds: float
    refund_amount: float
    units_sold: float
    units_ordered: float
    cart_units: float
    spend: float


class Totals(Measures):
    """The measures plus distinct counts and the ratios built on them (None where a denominator is zero)."""

    uv: int
    pv: float
    buyers: int
    aov: float | None
    conversion_rate: float | None
    uv_value: float | None
    refund_rate: float | None
    payment_rate: float | None
    new_customers: int
    repeat_rate: float | None
    roi: float | None


class Pacing(msgspec.Struct):
    """GMV against target: ``method`` is how the projection was made (baseline, plan, or none)."""

    target: float | None
    pct_complete: float | None
    projected_final: float | None
    projected_pct: float | None
    expected_share_now: float
    method: str


class FunnelStage(msgspec.Struct):
    stage: str
    name_zh: str
    count: float
    step_rate: float | None
    benchmark: float | None
    baseline_step_rate: float | None
    below_baseline: bool


class NextPhase(msgspec.Struct):
    phase: str
    starts_at: str


class ChannelRow(msgspec.Struct):
    channel: str
    gmv_paid: float
    orders_paid: float
    uv: int
    conversion_rate: float | None
    visits: float
    spend: float
    roi: float | None


class SkuRow(msgspec.Struct):
    """One SKU's stock and sales; ``on_hand`` None until a stock snapshot arrived (unknown, not zero)."""

    sku: str
    name: str
    name_zh: str | None
    category: str | None
    safety_stock: int | None
    warning_level: int | None
    on_hand: int | None
    warehouses: dict[str, int]
    unplaced_sold: int
    units_sold: int
    product_views: int
    add_to_cart: int
    gmv_paid: float
    sell_rate_per_min: float
    sell_out_eta_min: float | None
    sell_out_at: str | None
    sell_through: float | None
    sold_out: bool
    oversold: bool
    below_warning: bool
    below_safety: bool


class MetricReading(msgspec.Struct):
    """The latest value of one named metric series (from ``metric`` events)."""

    metric: str
    labels: dict[str, str]
    last: float | None
    last_at: str | None


class KeyLimit(msgspec.Struct):
    """Events of one key kind that met its limit (``app.metrics.engine.KEY_LIMITS``)."""

    key: str
    limit: int
    events: int


class Unconverted(msgspec.Struct):
    """Events in a currency without a rate, and their amounts per money measure, kept out of GMV."""

    events: int
    gmv_created: float
    gmv_paid: float
    refund_amount: float


class Snapshot(msgspec.Struct):
    """Every current number of one campaign, as of ``as_of``."""

    campaign: str
    name: str
    name_zh: str | None
    timezone: str
    currency: str | None
    as_of: str
    """The campaign's clock: the wall clock for a live night, the replay's event time for a rehearsal or drill."""
    clock: ClockMode
    last_seq: int
    last_event_at: str | None
    phase: str | None
    next_phase: NextPhase | None
    totals: Totals
    targets: dict[str, float | None]
    pacing: Pacing
    baseline: Measures | None
    funnel: list[FunnelStage]
    channels: list[ChannelRow]
    skus: list[SkuRow]
    metrics: list[MetricReading]
    events: int
    late_events: int
    dropped_keys: int
    key_limits: list[KeyLimit]
    replaying: bool
    unconverted: dict[str, Unconverted]


class SeriesLine(msgspec.Struct, omit_defaults=True):
    """One line of a series: ``key`` is its channel/SKU/category (None overall) or a named metric's labels.

    A measure or ratio has ``[time, value]`` points; a named metric ``[time, mean, sum, count]``, as ``columns`` says.
    """

    key: str | dict[str, str] | None
    points: list[list[str | float | None]]
    columns: list[str] | None = None


class UndefinedCampaign(msgspec.Struct):
    campaign: str
    events: int


class UndefinedReport(msgspec.Struct):
    """Events naming campaigns nobody defined, most first; ``other_events`` sums the names the table had no room for."""

    events: int
    campaigns: list[UndefinedCampaign]
    other_events: int
    names_kept: int
