"""How numbers read on the wall: 万/亿 in Chinese, K/M/B in English, the campaign's currency, signed changes.

Pure formatting, no I/O, so every rule here is unit-tested.
"""

from __future__ import annotations

import math

MISSING = "—"
"""Shown where a number is undefined (a ratio over nothing, no baseline yet)."""

ZH_UNITS: tuple[tuple[float, str], ...] = ((1e8, "亿"), (1e4, "万"))
EN_UNITS: tuple[tuple[float, str], ...] = ((1e9, "B"), (1e6, "M"), (1e3, "K"))
CURRENCY_SYMBOLS = {"CNY": "¥", "RMB": "¥", "JPY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "HKD": "HK$", "KRW": "₩"}
MINUS = "−"
"""A real minus sign: as wide as the plus, so columns of changes line up."""


def _scaled(value: float) -> str:
    """A number already divided by its unit, with about four significant digits."""
    digits = 2 if abs(value) < 100 else 1 if abs(value) < 1000 else 0
    return f"{value:,.{digits}f}"


def compact(value: float | None, lang: str) -> str:
    """A count or amount shortened for a big screen: 1,234 · 12.35万 · 1.23亿 (zh) or 12.35K · 1.23M (en)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    units = ZH_UNITS if lang == "zh" else EN_UNITS
    for size, suffix in units:
        if abs(value) >= size:
            return _scaled(value / size) + suffix
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.2f}"


def money(value: float | None, currency: str | None, lang: str) -> str:
    """An amount in the campaign's currency, shortened like ``compact``: ¥1.23亿, $12.35M."""
    text = compact(value, lang)
    if text == MISSING or not currency:
        return text
    symbol = CURRENCY_SYMBOLS.get(currency)
    sign, digits = (MINUS, text[1:]) if text.startswith("-") else ("", text)
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {currency}"


def percent(ratio: float | None, digits: int = 1) -> str:
    """A ratio as a percentage: 0.1234 → 12.3%."""
    if ratio is None or not math.isfinite(ratio):
        return MISSING
    return f"{ratio * 100:.{digits}f}%"


def relative_change(current: float | None, reference: float | None) -> float | None:
    """current ÷ reference − 1, or None when there is nothing to compare with."""
    if current is None or reference is None or reference == 0:
        return None
    return current / reference - 1


def signed_percent(change: float | None) -> str:
    """A change as a signed percentage: +12.3% or −4.0% (a true minus sign)."""
    if change is None or not math.isfinite(change):
        return MISSING
    text = f"{abs(change) * 100:.1f}%"
    return ("+" if change >= 0 else MINUS) + text


def duration(minutes: float | None, lang: str) -> str:
    """A sell-out ETA: 45 s → <1 min, 12 min, 2 h 05 min, 3 d 4 h (zh: 12分钟, 2小时05分, 3天4小时)."""
    if minutes is None or not math.isfinite(minutes):
        return MISSING
    whole = int(minutes)
    days, rest = divmod(whole, 1440)
    hours, mins = divmod(rest, 60)
    if lang == "zh":
        if whole < 1:
            return "<1分钟"
        if days:
            return f"{days}天{hours}小时"
        return f"{hours}小时{mins:02d}分" if hours else f"{mins}分钟"
    if whole < 1:
        return "<1 min"
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins:02d} min" if hours else f"{mins} min"


def countdown(seconds: float, lang: str) -> str:
    """Time to the next phase: 04:05:06, or 3天 04:05:06 / 3d 04:05:06 beyond a day."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    if not days:
        return clock
    return f"{days}天 {clock}" if lang == "zh" else f"{days}d {clock}"


def age(seconds: float, lang: str) -> str:
    """How long ago an alert fired: 35s, 4m, 2h 10m (zh: 35秒, 4分钟, 2小时10分)."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total}秒" if lang == "zh" else f"{total}s"
    if total < 3600:
        return f"{total // 60}分钟" if lang == "zh" else f"{total // 60}m"
    return f"{total // 3600}小时{total % 3600 // 60}分" if lang == "zh" else f"{total // 3600}h {total % 3600 // 60}m"


def axis_tick(value: float, lang: str, currency: str | None = None) -> str:
    """A round gridline value, as short as it goes: 50万 · 1.5亿 (zh), 500K · 1.5M (en), with the currency's symbol."""
    units = ZH_UNITS if lang == "zh" else EN_UNITS
    size, suffix = next(((s, u) for s, u in units if abs(value) >= s), (1.0, ""))
    digits = f"{value / size:,.2f}".rstrip("0").rstrip(".")
    symbol = CURRENCY_SYMBOLS.get(currency or "", "")
    return f"{symbol}{digits}{suffix}"
