"""The KPI tiles: today's value of each headline metric and its change against last year at the same offset.

The baseline holds last year's cumulative measures at the same moment of its
night (visits, orders, GMV…), not distinct visitors or buyers, so UV,
conversion and UV value are compared through visits on both sides: like with
like. New customers have no baseline counterpart and show no change.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.metrics.snapshot import Measures, Snapshot, Totals
from dashboard import i18n
from dashboard.i18n import Language
from dashboard.numbers import MISSING, compact, money, percent, relative_change, signed_percent

TILES = ("gmv_paid", "orders_paid", "payment_rate", "aov", "uv", "conversion_rate", "uv_value", "new_customers")
"""The headline metrics, in the order the tiles show them."""


@dataclass(frozen=True)
class Tile:
    """One KPI tile as displayed: label, big number, an optional detail line, and the change vs baseline."""

    key: str
    label: str
    value: str
    detail: str
    change: float | None
    change_text: str


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def baseline_values(baseline: Measures | None) -> dict[str, float | None]:
    """Last year's value of each tile metric at the same offset (None where it cannot be known)."""
    if baseline is None:
        return dict.fromkeys(TILES)
    b = baseline
    return {
        "gmv_paid": b.gmv_paid,
        "orders_paid": b.orders_paid,
        "payment_rate": _ratio(b.orders_paid, b.orders_created),
        "aov": _ratio(b.gmv_paid, b.orders_paid),
        "uv": b.visits,
        "conversion_rate": _ratio(b.orders_paid, b.visits),
        "uv_value": _ratio(b.gmv_paid, b.visits),
        "new_customers": None,
    }


def comparable_values(totals: Totals) -> dict[str, float | None]:
    """Today's numbers on the same footing as ``baseline_values`` (visits stand in for UV)."""
    return {
        "gmv_paid": totals.gmv_paid,
        "orders_paid": totals.orders_paid,
        "payment_rate": totals.payment_rate,
        "aov": totals.aov,
        "uv": totals.visits,
        "conversion_rate": _ratio(totals.orders_paid, totals.visits),
        "uv_value": _ratio(totals.gmv_paid, totals.visits),
        "new_customers": None,
    }


def tiles(snapshot: Snapshot, lang: Language) -> list[Tile]:
    """The eight tiles, paid GMV first (with % of target and the projected final GMV)."""
    totals = snapshot.totals
    currency = snapshot.currency
    pacing = snapshot.pacing
    base = baseline_values(snapshot.baseline)
    now = comparable_values(totals)
    gmv_detail = (
        f"{i18n.text('of_target', lang)} {percent(pacing.pct_complete)} · "
        f"{i18n.text('projected', lang)} {money(pacing.projected_final, currency, lang)}"
        if pacing.target
        else ""
    )
    shown = {
        "gmv_paid": (money(totals.gmv_paid, currency, lang), gmv_detail),
        "orders_paid": (compact(totals.orders_paid, lang), ""),
        "payment_rate": (percent(totals.payment_rate), ""),
        "aov": (money(totals.aov, currency, lang), ""),
        "uv": (compact(totals.uv, lang), ""),
        "conversion_rate": (percent(totals.conversion_rate, 2), ""),
        "uv_value": (money(totals.uv_value, currency, lang), ""),
        "new_customers": (compact(totals.new_customers, lang), ""),
    }
    out = []
    for key, (value, detail) in shown.items():
        change = relative_change(now[key], base[key])
        change_text = f"{i18n.text('vs_baseline', lang)} {signed_percent(change)}" if change is not None else MISSING
        out.append(Tile(key, i18n.text(key, lang), value, detail, change, change_text))
    return out
