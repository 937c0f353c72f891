"""Stock on hand per SKU and warehouse, from ``stock_level`` snapshots, ``stock_adjust`` deltas and sales.

A warehouse's on-hand is its newest ``stock_level`` (by ``occurred_at``; an
older snapshot arriving late is ignored) plus the ``stock_adjust`` deltas that
happened after it. Sales deduct from the SKU as a whole: units sold (or
ordered, per the campaign's ``stock_deducted_on``) after the SKU's newest
snapshot, the snapshot's own second included. Sales are counted to the second
within the last hour and to the minute before that (see ``series.Series.since``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class WarehouseStock:
    level: int = 0
    level_at: float = float("-inf")
    adjustments: list[tuple[float, int]] = field(default_factory=list)
    """(occurred_at, delta) of adjustments after ``level_at``: few (restocks), dropped at the next snapshot."""

    def set_level(self, quantity: int, at: float) -> None:
        if at < self.level_at:
            return
        self.level, self.level_at = quantity, at
        self.adjustments = [(t, d) for t, d in self.adjustments if t > at]

    def adjust(self, delta: int, at: float) -> None:
        if at > self.level_at:
            self.adjustments.append((at, delta))

    @property
    def on_hand(self) -> int:
        return self.level + sum(delta for _, delta in self.adjustments)


@dataclass(slots=True)
class SkuStock:
    warehouses: dict[str, WarehouseStock] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        """True once any snapshot arrived; before that on-hand is unknown, not zero."""
        return any(w.level_at != float("-inf") for w in self.warehouses.values())

    @property
    def counted_at(self) -> float:
        """When the newest snapshot of any warehouse was taken: sales after it reduce stock."""
        return max((w.level_at for w in self.warehouses.values()), default=float("-inf"))

    def warehouse(self, name: str) -> WarehouseStock:
        stock = self.warehouses.get(name)
        if stock is None:
            stock = self.warehouses[name] = WarehouseStock()
        return stock


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
