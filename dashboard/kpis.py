"""The KPI tiles: today's value of each headline metric and its change against last year at the same offset.

The baseline holds last year's cumulative measures at the same moment of its
night (visits, orders, GMV…), not distinct visitors or buyers, so UV,
conversion and UV value are compared through visits on both sides: like with
like. New customers have no baseline counterpart and show no change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashboard import i18n
from dashboard.i18n import Language
from dashboard.numbers import MISSING, compact, money, percent, relative_change, signed_percent


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


def baseline_values(baseline: dict[str, float] | None) -> dict[str, float | None]:
    """Last year's value of each tile metric at the same offset (None where it cannot be known)."""
    b = baseline or {}
    return {
        "gmv_paid": b.get("gmv_paid"),
        "orders_paid": b.get("orders_paid"),
        "payment_rate": _ratio(b.get("orders_paid"), b.get("orders_created")),
        "aov": _ratio(b.get("gmv_paid"), b.get("orders_paid")),
        "uv": b.get("visits"),
        "conversion_rate": _ratio(b.get("orders_paid"), b.get("visits")),
        "uv_value": _ratio(b.get("gmv_paid"), b.get("visits")),
        "new_customers": None,
    }


def comparable_values(totals: dict[str, Any]) -> dict[str, float | None]:
    """Today's numbers on the same footing as ``baseline_values`` (visits stand in for UV)."""
    return {
        "gmv_paid": totals.get("gmv_paid"),
        "orders_paid": totals.get("orders_paid"),
        "payment_rate": totals.get("payment_rate"),
        "aov": totals.get("aov"),
        "uv": totals.get("visits"),
        "conversion_rate": _ratio(totals.get("orders_paid"), totals.get("visits")),
        "uv_value": _ratio(totals.get("gmv_paid"), totals.get("visits")),
        "new_customers": None,
    }


def tiles(snapshot: dict[str, Any], lang: Language) -> list[Tile]:
    """The eight tiles, paid GMV first (with % of target and the projected final GMV)."""
    totals = snapshot.get("totals") or {}
    currency = snapshot.get("currency")
    pacing = snapshot.get("pacing") or {}
    base = baseline_values(snapshot.get("baseline")) if snapshot.get("baseline") else {}
    now = comparable_values(totals)
    gmv_detail = (
        f"{i18n.text('of_target', lang)} {percent(pacing.get('pct_complete'))} · "
        f"{i18n.text('projected', lang)} {money(pacing.get('projected_final'), currency, lang)}"
        if pacing.get("target")
        else ""
    )
    shown = {
        "gmv_paid": (money(totals.get("gmv_paid"), currency, lang), gmv_detail),
        "orders_paid": (compact(totals.get("orders_paid"), lang), ""),
        "payment_rate": (percent(totals.get("payment_rate")), ""),
        "aov": (money(totals.get("aov"), currency, lang), ""),
        "uv": (compact(totals.get("uv"), lang), ""),
        "conversion_rate": (percent(totals.get("conversion_rate"), 2), ""),
        "uv_value": (money(totals.get("uv_value"), currency, lang), ""),
        "new_customers": (compact(totals.get("new_customers"), lang), ""),
    }
    out = []
    for key, (value, detail) in shown.items():
        change = relative_change(now[key], base.get(key))
        change_text = f"{i18n.text('vs_baseline', lang)} {signed_percent(change)}" if change is not None else MISSING
        out.append(Tile(key, i18n.text(key, lang), value, detail, change, change_text))
    return out
