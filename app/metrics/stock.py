"""Stock on hand per SKU and warehouse, from ``stock_level`` snapshots, ``stock_adjust`` deltas and sales.

A warehouse's on-hand is its newest ``stock_level`` (by ``occurred_at``; an
older snapshot arriving late is ignored), plus the ``stock_adjust`` deltas
after it, minus the sales naming that warehouse after it. A sale is an
``order_paid`` (or ``order_created``, per the campaign's ``stock_deducted_on``)
with a SKU, for ``quantity`` units (1 when absent). "After" is to the second:
a sale in the snapshot's own second counts, because a snapshot and the sales
posted right behind it usually share a second.

A sale naming no warehouse (or one no snapshot has counted yet) cannot be placed, so it reduces the SKU's on-hand
but no warehouse's: it counts when it is at or after the *oldest* current
snapshot of the SKU's warehouses, since it may be missing from that count. If
it really came from a warehouse counted later, that newer count already
includes it and the SKU's on-hand errs low by it — a war-room would rather
warn early than overstate stock. With one warehouse, or warehouses counted
together, the rule is exact. (A warehouse's first snapshot arriving late and
older than the others cannot bring back unplaced sales already forgotten.)

Sales are kept in second buckets within the engine's recent window and minute
buckets before it (a minute containing a snapshot counts as after it), and are
forgotten once a newer snapshot includes them: memory is bounded by SKUs,
warehouses and the buckets since their snapshots, not by sales.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SALE_TYPES: tuple[str, ...] = ("order_paid", "order_created")
"""Units are kept per event type that can deduct stock; the campaign's ``stock_deducted_on`` picks one when read."""
MAX_WAREHOUSES = 64
"""Warehouses per SKU; a sale naming one past this counts as unplaced, a snapshot of one is dropped."""
NOT_COUNTED = float("-inf")
"""``level_at`` of a warehouse no snapshot has counted yet."""
FROM_THE_START = -(2**62)
"""The cut of sales no snapshot has made obsolete yet."""


def _zero() -> list[int]:
    return [0] * len(SALE_TYPES)


@dataclass(slots=True)
class Sales:
    """Units sold at or after ``cut`` (a second), per sale type: by second recently, by minute before that."""

    seconds: dict[int, list[int]] = field(default_factory=dict)
    minutes: dict[int, list[int]] = field(default_factory=dict)
    total: list[int] = field(default_factory=_zero)
    cut: int = FROM_THE_START

    def add(self, kind: int, units: int, second: int, keep_second: bool) -> None:
        """Count a sale unless a snapshot taken after it already includes it."""
        if second < self.cut:
            return
        buckets, key = (self.seconds, second) if keep_second else (self.minutes, second // 60)
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = _zero()
        bucket[kind] += units
        self.total[kind] += units

    def forget_before(self, second: int) -> None:
        """Drop sales before ``second``: a snapshot taken then includes them. Only ever moves forward."""
        if second <= self.cut:
            return
        self.cut = second
        for buckets, oldest in ((self.seconds, second), (self.minutes, second // 60)):
            for key in [k for k in buckets if k < oldest]:
                for kind, units in enumerate(buckets.pop(key)):
                    self.total[kind] -= units

    def coarsen(self, oldest_second: int) -> None:
        """Fold second buckets older than ``oldest_second`` into their minutes (totals unchanged)."""
        for key in [k for k in self.seconds if k < oldest_second]:
            bucket = self.seconds.pop(key)
            minute = self.minutes.get(key // 60)
            if minute is None:
                minute = self.minutes[key // 60] = _zero()
            for kind, units in enumerate(bucket):
                minute[kind] += units


@dataclass(slots=True)
class WarehouseStock:
    level: int = 0
    level_at: float = NOT_COUNTED
    adjustments: list[tuple[float, int]] = field(default_factory=list)
    """(occurred_at, delta) of adjustments after ``level_at``: few (restocks), dropped at the next snapshot."""
    sales: Sales = field(default_factory=Sales)
    """Sales naming this warehouse, since its snapshot."""

    @property
    def counted(self) -> bool:
        return self.level_at != NOT_COUNTED

    def set_level(self, quantity: int, at: float) -> None:
        if at < self.level_at:
            return
        self.level, self.level_at = quantity, at
        self.adjustments = [(t, d) for t, d in self.adjustments if t > at]
        self.sales.forget_before(int(at // 1))

    def adjust(self, delta: int, at: float) -> None:
        if at > self.level_at:
            self.adjustments.append((at, delta))

    def on_hand(self, kind: int) -> int:
        """Snapshot + later adjustments − later sales of type ``SALE_TYPES[kind]`` naming this warehouse."""
        return self.level + sum(delta for _, delta in self.adjustments) - self.sales.total[kind]


@dataclass(slots=True)
class SkuStock:
    warehouses: dict[str, WarehouseStock] = field(default_factory=dict)
    unplaced: Sales = field(default_factory=Sales)
    """Sales naming no warehouse, since the oldest current snapshot of any warehouse."""

    @property
    def known(self) -> bool:
        """True once any snapshot arrived; before that on-hand is unknown, not zero."""
        return any(w.counted for w in self.warehouses.values())

    def warehouse(self, name: str) -> WarehouseStock | None:
        """The named warehouse (created on first sight); None past ``MAX_WAREHOUSES``."""
        stock = self.warehouses.get(name)
        if stock is None:
            if len(self.warehouses) >= MAX_WAREHOUSES:
                return None
            stock = self.warehouses[name] = WarehouseStock()
        return stock

    def set_level(self, warehouse: WarehouseStock, quantity: int, at: float) -> None:
        """A snapshot of one of this SKU's warehouses; unplaced sales older than every count are forgotten."""
        warehouse.set_level(quantity, at)
        oldest = min(w.level_at for w in self.warehouses.values() if w.counted)
        self.unplaced.forget_before(int(oldest // 1))

    def sell(self, warehouse: str | None, kind: int, units: int, second: int, keep_second: bool) -> None:
        """Deduct a sale from the warehouse it names once that warehouse has been counted; else it is unplaced.

        A sale naming a warehouse no snapshot covers (orders name ``wh-sh`` while stock is counted under
        ``default``) would otherwise pile up against a warehouse no count ever resets.
        """
        stock = self.warehouses.get(warehouse) if warehouse else None
        target = stock.sales if stock is not None and stock.counted else self.unplaced
        target.add(kind, units, second, keep_second)

    def by_warehouse(self, kind: int) -> dict[str, int]:
        return {name: w.on_hand(kind) for name, w in sorted(self.warehouses.items())}

    def on_hand(self, kind: int) -> int | None:
        """Every warehouse's on-hand minus the unplaced sales; None before the first snapshot."""
        if not self.known:
            return None
        return sum(w.on_hand(kind) for w in self.warehouses.values()) - self.unplaced.total[kind]

    def coarsen(self, oldest_second: int) -> None:
        self.unplaced.coarsen(oldest_second)
        for stock in self.warehouses.values():
            stock.sales.coarsen(oldest_second)


def sell_out_eta_minutes(on_hand: int, units_per_minute: float) -> float | None:
    """Minutes until on-hand reaches zero at the current rate; None when nothing sells; 0 when already out."""
    if on_hand <= 0:
        return 0.0
    if units_per_minute <= 0:
        return None
    return on_hand / units_per_minute


def sell_through(sold: int, on_hand: int) -> float | None:
    """售罄率: units sold ÷ (units sold + on hand)."""
    denominator = sold + max(on_hand, 0)
    return sold / denominator if denominator else None
