"""The Double-11 drill scenario (实战演练): a deterministic stream of shop events shaped like a real burst.

Pure: no clock, no network. Simulated time is in seconds relative to the
burst start (midnight), stepped one simulated second at a time; each step
draws from its own ``Random(seed, step)``, and state (stock, refunds due)
advances step by step, so a given seed always yields the same events
however fast or slow they are sent.

Shape: a pre-heat that ramps up, a midnight burst of about 30× the pre-heat
rate within two minutes decaying with a 15-minute half-life, funnel rates
near the playbook benchmarks (visit→view 68%, view→cart 35%, cart→order
25%), five channels, a long-tail SKU mix whose hot SKUs run down within
the first half hour, stock snapshots, spend and operational metrics. In a
quiet run the warehouse replenishes a SKU when it falls below its warning
level (so the night stays free of warnings); the ``sellout`` incident stops
that for the hottest SKU and multiplies its demand, so it sells out.
Incidents switch on at a simulated minute after midnight.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.campaigns.model import Sku

CHANNELS: tuple[tuple[str, float], ...] = (("tmall", 0.42), ("jd", 0.2), ("douyin", 0.2), ("app", 0.12), ("web", 0.06))
PEAK_FACTOR = 30.0
RAMP_S = 120.0
HALF_LIFE_S = 900.0
FLOOR_FACTOR = 4.0
PREHEAT_GROWTH = 1.0
"""Traffic at midnight's eve is (1 + PREHEAT_GROWTH)× the start of the pre-heat window."""

P_VIEW = 0.68
P_CART = 0.35
P_CHECKOUT = 0.55
P_ORDER_FROM_CHECKOUT = 0.25 / P_CHECKOUT
P_PAID = 0.93
P_CANCEL = 0.3
P_REFUND = 0.015
LOGGED_IN = 0.65
RETURNING_SHARE = 0.5
STOCK_SNAPSHOT_EVERY_S = 300
METRICS_EVERY_S = 60
HOT_SKUS = 5
HOT_STOCK_MINUTES = 20.0
"""Hot SKUs start with about this many burst minutes of demand: they run down to their warning level early
in the burst, and then the warehouse restocks them (``_restock``), because a quiet night must fire no
warning or emergency. Only the ``sellout`` incident stops the restocking, and then a hot SKU sells out."""
MIN_STOCK = 20
RESTOCK_S = 1800
"""A replenishment covers about half an hour of demand at the current rate."""
ZIPF_S = 1.1
SPEND_PER_VISIT = 0.35

INCIDENTS: dict[str, float] = {
    "payment_outage": 6 * 60,
    "sellout": 10 * 60,
    "slow_pages": 10 * 60,
    "gmv_drop": 10 * 60,
    "brushing": 3 * 60,
}
"""Incident names and how long each lasts, in simulated seconds."""
GMV_DROP_FACTOR = 0.4
"""During a gmv_drop, checkouts turn into orders 60% less often (a broken coupon, a pricing error…)."""
SELLOUT_DEMAND = 3.0
SELLOUT_STOCK_MIN = 1.5
"""At a sellout the hottest SKU's demand triples and its stock is cut to about 1.5 minutes of normal demand."""
BRUSHING_USERS = 5
BRUSHING_ORDERS_PER_S = 2.0


@dataclass(frozen=True)
class Incident:
    name: str
    start_s: float

    @classmethod
    def parse(cls, text: str) -> Incident:
        """``payment_outage@12`` → the payment outage starting 12 simulated minutes after midnight."""
        name, _, minute = text.partition("@")
        if name not in INCIDENTS:
            raise ValueError(f"unknown incident {name!r}; one of {', '.join(INCIDENTS)}")
        try:
            return cls(name, float(minute) * 60)
        except ValueError:
            raise ValueError(f"incident {text!r} needs a minute after @, e.g. {name}@12") from None

    def active(self, t: float) -> bool:
        return self.start_s <= t < self.start_s + INCIDENTS[self.name]


@dataclass
class Scenario:
    """Generates the events of one simulated second at a time; call ``step`` with increasing ``t``."""

    campaign: str
    skus: list[Sku]
    seed: int
    base_visits_per_min: float = 15.0
    incidents: tuple[Incident, ...] = ()
    preheat_s: float = 1200.0
    id_prefix: str = "sim"
    _stock: dict[str, int] = field(default_factory=dict, init=False)
    _weights: list[float] = field(default_factory=list, init=False)
    _started: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self._weights = [1.0 / (rank + 1) ** ZIPF_S for rank in range(len(self.skus))]

    # ---- the shape ---------------------------------------------------------------------------

    def visits_per_s(self, t: float) -> float:
        base = self.base_visits_per_min / 60
        if t < 0:
            progress = max(0.0, 1 + t / self.preheat_s)
            rate = base * (1 + PREHEAT_GROWTH * progress)
        elif t < RAMP_S:
            eve = base * (1 + PREHEAT_GROWTH)
            rate = eve + (base * PEAK_FACTOR - eve) * t / RAMP_S
        else:
            floor = base * FLOOR_FACTOR
            rate = floor + (base * PEAK_FACTOR - floor) * 0.5 ** ((t - RAMP_S) / HALF_LIFE_S)
        if self._incident("slow_pages", t):
            rate *= 1.4
        return rate

    def _incident(self, name: str, t: float) -> bool:
        return any(i.name == name and i.active(t) for i in self.incidents)

    def expected_units_per_s(self, t: float) -> list[float]:
        """Expected paid units per second for every SKU at ``t`` (used to size hot SKUs' stock)."""
        buyers = self.visits_per_s(t) * P_VIEW * P_CART * P_CHECKOUT * P_ORDER_FROM_CHECKOUT * P_PAID
        total = sum(self._weights)
        return [buyers * w / total for w in self._weights]

    # ---- the stream --------------------------------------------------------------------------

    def _initial_stock(self) -> list[dict[str, Any]]:
        burst_units = [u * 60 for u in self.expected_units_per_s(RAMP_S + 300)]
        events = []
        for rank, sku in enumerate(self.skus):
            minutes = HOT_STOCK_MINUTES if rank < HOT_SKUS else 600.0
            self._stock[sku.sku] = max(MIN_STOCK, sku.warning_level * 3 // 2, int(burst_units[rank] * minutes))
            events.append(self._stock_event(sku.sku, "init"))
        return events

    def _stock_event(self, sku: str, tag: str) -> dict[str, Any]:
        return {
            "event_id": f"{self.id_prefix}-stock-{sku}-{tag}",
            "type": "stock_level",
            "sku": sku,
            "quantity": max(self._stock[sku], 0),
            "warehouse": "main",
        }

    def step(self, t: int) -> list[tuple[float, dict[str, Any]]]:
        """Events of simulated second ``t`` as (simulated time, event without occurred_at/campaign)."""
        rng = random.Random(self.seed * 1_000_003 + t)
        events: list[tuple[float, dict[str, Any]]] = []
        if not self._started:
            self._started = True
            events += [(float(t), e) for e in self._initial_stock()]
        n_visits = _poisson(rng, self.visits_per_s(t))
        for n in range(n_visits):
            events += self._session(rng, t, f"{t}-{n}")
        if self._incident("brushing", t):
            events += self._brushing(rng, t)
        if t % METRICS_EVERY_S == 0:
            events += self._metrics(rng, t)
        if t % STOCK_SNAPSHOT_EVERY_S == 0:
            events += [(t + 0.999, self._stock_event(sku.sku, str(t))) for sku in self.skus]
        events += self._restock(t)
        if any(i.name == "sellout" and int(i.start_s) == t for i in self.incidents):
            hot = self.skus[0].sku
            self._stock[hot] = min(
                self._stock[hot], max(5, int(self.expected_units_per_s(t)[0] * 60 * SELLOUT_STOCK_MIN))
            )
            events.append((float(t), self._stock_event(hot, f"sellout-{t}")))
        events.sort(key=lambda item: item[0])
        return events

    def _restock(self, t: int) -> list[tuple[float, dict[str, Any]]]:
        """The warehouse replenishes a SKU that falls below its warning level — except the hot SKU in a sellout."""
        out = []
        for rank, sku in enumerate(self.skus):
            if self._stock[sku.sku] >= sku.warning_level or (rank == 0 and self._incident("sellout", t)):
                continue
            amount = max(sku.warning_level * 2, int(self.expected_units_per_s(t)[rank] * RESTOCK_S))
            self._stock[sku.sku] += amount
            out.append(
                (
                    t + 0.998,
                    {
                        "event_id": f"{self.id_prefix}-restock-{sku.sku}-{t}",
                        "type": "stock_adjust",
                        "sku": sku.sku,
                        "quantity": amount,
                        "warehouse": "main",
                    },
                )
            )
        return out

    def _pick_sku(self, rng: random.Random, t: float) -> Sku:
        weights = self._weights
        if self._incident("sellout", t):
            weights = [w * (SELLOUT_DEMAND if rank == 0 else 1) for rank, w in enumerate(weights)]
        return rng.choices(self.skus, weights)[0]

    def _session(self, rng: random.Random, t: int, tag: str) -> list[tuple[float, dict[str, Any]]]:
        channel = rng.choices([c for c, _ in CHANNELS], [w for _, w in CHANNELS])[0]
        pool = max(1000, int(self.base_visits_per_min * 400))
        person = rng.randrange(pool) if rng.random() < RETURNING_SHARE else pool + rng.randrange(10**9)
        who = {"user_id": f"u{person}"} if rng.random() < LOGGED_IN else {"anonymous_id": f"a{person}"}
        session = f"{self.id_prefix}-s{tag}"
        base = {"channel": channel, "session_id": session, **who}
        at = t + rng.random() * 0.5
        out: list[tuple[float, dict[str, Any]]] = []

        def emit(kind: str, **fields: Any) -> None:
            out.append((at, {"event_id": f"{self.id_prefix}-{tag}-{len(out)}", "type": kind, **base, **fields}))

        emit("visit")
        for _ in range(1 + (rng.random() < 0.6) + (rng.random() < 0.3)):
            emit("page_view")
        slow = self._incident("slow_pages", t)
        if rng.random() >= P_VIEW:
            return out
        sku = self._pick_sku(rng, t)
        emit("product_view", sku=sku.sku)
        if rng.random() >= P_CART * (0.3 if slow else 1):
            return out
        quantity = 2 if rng.random() < 0.1 else 1
        price = sku.price or 100.0
        emit("add_to_cart", sku=sku.sku, quantity=quantity, amount=round(price * quantity, 2))
        if rng.random() >= P_CHECKOUT:
            return out
        emit("checkout")
        p_order = (
            P_ORDER_FROM_CHECKOUT * (0.3 if slow else 1) * (GMV_DROP_FACTOR if self._incident("gmv_drop", t) else 1)
        )
        if rng.random() >= p_order or self._stock.get(sku.sku, 0) < quantity:
            return out
        order = f"{self.id_prefix}-o{tag}"
        amount = round(price * quantity, 2)
        emit("order_created", order_id=order, sku=sku.sku, quantity=quantity, amount=amount)
        p_paid = 0.05 if self._incident("payment_outage", t) else P_PAID
        if rng.random() < p_paid:
            self._stock[sku.sku] -= quantity
            emit("order_paid", order_id=order, sku=sku.sku, quantity=quantity, amount=amount)
            if rng.random() < P_REFUND:
                emit("refund", order_id=order, sku=sku.sku, quantity=quantity, amount=amount)
        elif rng.random() < P_CANCEL:
            emit("order_cancelled", order_id=order, sku=sku.sku, quantity=quantity)
        return out

    def _brushing(self, rng: random.Random, t: int) -> list[tuple[float, dict[str, Any]]]:
        cheap = min(self.skus, key=lambda s: s.price or 0)
        out = []
        for n in range(_poisson(rng, BRUSHING_ORDERS_PER_S * BRUSHING_USERS)):
            user = f"brush{rng.randrange(BRUSHING_USERS)}"
            order = f"{self.id_prefix}-b{t}-{n}"
            common = {
                "user_id": user,
                "channel": "app",
                "order_id": order,
                "sku": cheap.sku,
                "quantity": 1,
                "amount": cheap.price or 1.0,
            }
            out.append((t + 0.5, {"event_id": f"{order}-c", "type": "order_created", **common}))
            out.append((t + 0.6, {"event_id": f"{order}-p", "type": "order_paid", **common}))
            self._stock[cheap.sku] -= 1  # fake orders take real stock, and the warehouse restocks as for any sale
        return out

    def _metrics(self, rng: random.Random, t: int) -> list[tuple[float, dict[str, Any]]]:
        visits_per_min = self.visits_per_s(t) * 60
        outage = self._incident("payment_outage", t)
        slow = self._incident("slow_pages", t)
        values: list[tuple[str, float, dict[str, str]]] = [
            ("payment_success_rate", 0.05 if outage else min(0.999, rng.gauss(0.985, 0.004)), {}),
            ("page_load_ms", (4500 if slow else 900) * rng.uniform(0.9, 1.1), {}),
            (
                "cs_response_s",
                max(3.0, rng.gauss(9 + 4 * visits_per_min / (self.base_visits_per_min * PEAK_FACTOR), 1.2)),
                {},
            ),
        ]
        for channel, share in CHANNELS:
            values.append(
                (
                    "ad_spend",
                    round(visits_per_min * share * SPEND_PER_VISIT * rng.uniform(0.9, 1.1), 2),
                    {"channel": channel},
                )
            )
        return [
            (
                t + 0.9,
                {
                    "event_id": f"{self.id_prefix}-m{t}-{name}-{labels.get('channel', '')}",
                    "type": "metric",
                    "metric": name,
                    "value": round(value, 4),
                    "labels": labels,
                },
            )
            for name, value, labels in values
        ]


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: Knuth's method for small means, a rounded normal for large ones."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def stamp(
    events: list[tuple[float, dict[str, Any]]], campaign: str, to_iso: Callable[[float], str]
) -> list[dict[str, Any]]:
    """Give simulated events their campaign and real ``occurred_at``."""
    return [{**event, "campaign": campaign, "occurred_at": to_iso(t)} for t, event in events]
