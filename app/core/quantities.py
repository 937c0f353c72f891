"""How a quantity reads to a person, in the room's language: 万/亿 in Chinese and K/M/B in English, the campaign's
currency, ratios as percentages, durations as "2分36秒" / "2m 36s", and chart axes in the same units.

Pure formatting (no clock, no I/O) shared by the alert texts (``alerts.evaluation.messages``) and the wall
(``dashboard.numbers``), so a value reads the same in a chat message, on the on-call page and on the wall.
"""

from __future__ import annotations

import math
from typing import Literal

MISSING = "—"
"""Shown where a number is undefined (a ratio over nothing, no baseline yet, no reading)."""

ZH_UNITS: tuple[tuple[float, str], ...] = ((1e8, "亿"), (1e4, "万"))
EN_UNITS: tuple[tuple[float, str], ...] = ((1e9, "B"), (1e6, "M"), (1e3, "K"))
CURRENCY_SYMBOLS = {"CNY": "¥", "RMB": "¥", "JPY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "HKD": "HK$", "KRW": "₩"}
MINUS = "−"
"""A real minus sign: as wide as the plus, so columns of changes line up."""
COLUMN_EXACT_BELOW = 1e6
"""A column of counts is written out in full while its largest value stays under this (999,999 fits a column)."""
AXIS_TICKS = 5
"""About this many ticks on a chart's value axis."""
NICE_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)
"""Axis steps are one of these times a power of ten, so tick labels stay short (500万, 1,000万, 1.5亿)."""

SENTENCE_EXACT_BELOW = 1e4
"""A count in a sentence is written out below this (5,000 units, not 5.00K), in either language."""

Unit = Literal["ratio", "change", "money", "count", "minutes", "number"]
"""What a metric's number means, hence how it reads: ``ratio`` 0.938 → 93.8%; ``change`` (current ÷ reference − 1)
-0.38 → −38%; ``money`` in the campaign's currency with 万/亿 or K/M/B; ``count`` 12,345 → 1.23万 / 12.35K;
``minutes`` 156 → 2小时36分 / 2 h 36 min; ``number`` as written (the text carries its unit: ms, s)."""
Language = Literal["zh", "en"]


def _scaled(value: float) -> str:
    """A number already divided by its unit, with about four significant digits."""
    digits = 2 if abs(value) < 100 else 1 if abs(value) < 1000 else 0
    return f"{value:,.{digits}f}"


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def compact(value: float | None, lang: str) -> str:
    """A count or amount shortened for a big screen: 1,234 · 12.35万 · 1.23亿 (zh) or 12.35K · 1.23M (en)."""
    if value is None or not math.isfinite(value):
        return MISSING
    units = ZH_UNITS if lang == "zh" else EN_UNITS
    for size, suffix in units:
        if abs(value) >= size:
            return _scaled(value / size) + suffix
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.2f}"


def _with_currency(text: str, currency: str | None) -> str:
    if text == MISSING or not currency:
        return text
    symbol = CURRENCY_SYMBOLS.get(currency)
    sign, digits = (MINUS, text[1:]) if text.startswith("-") else ("", text)
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {currency}"


def column(values: list[float | None], lang: str) -> list[str]:
    """Counts of one table column, all in one format: written out (1,670 and 603) while the largest stays under
    ``COLUMN_EXACT_BELOW``, else all in the largest one's unit (12.35万 and 0.06万), never a mix of 1.67K and 603."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    largest = max(finite, default=0.0)
    if largest < COLUMN_EXACT_BELOW:
        return [MISSING if v is None or not math.isfinite(v) else f"{v:,.0f}" for v in values]
    size, suffix = next((s, u) for s, u in (ZH_UNITS if lang == "zh" else EN_UNITS) if largest >= s)
    digits = 2 if largest / size < 100 else 1 if largest / size < 1000 else 0
    return [MISSING if v is None or not math.isfinite(v) else f"{v / size:,.{digits}f}{suffix}" for v in values]


def money(value: float | None, currency: str | None, lang: str) -> str:
    """An amount in the campaign's currency, shortened like ``compact``: ¥1.23亿, $12.35M."""
    return _with_currency(compact(value, lang), currency)


def _trimmed(number: float, digits: int) -> str:
    """``number`` with at most ``digits`` decimals and no trailing zeros: 95.0 → 95, 93.80 → 93.8."""
    text = f"{number:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(ratio: float | None, digits: int = 1) -> str:
    """A ratio as a percentage: 0.1234 → 12.3%."""
    if ratio is None or not math.isfinite(ratio):
        return MISSING
    return f"{ratio * 100:.{digits}f}%"


def share(ratio: float | None) -> str:
    """A ratio in a sentence: as short as it stays exact to a tenth of a point (0.95 → 95%, 0.938 → 93.8%), with a
    second decimal below one percent (0.0042 → 0.42%)."""
    if ratio is None or not math.isfinite(ratio):
        return MISSING
    return _trimmed(ratio * 100, 2 if abs(ratio) < 0.01 else 1) + "%"


def signed_percent(change: float | None) -> str:
    """A change as a signed percentage: +12.3% or −4.0% (a true minus sign)."""
    if change is None or not math.isfinite(change):
        return MISSING
    text = f"{abs(change) * 100:.1f}%"
    return ("+" if change >= 0 else MINUS) + text


def signed_share(change: float | None) -> str:
    """A change in a sentence: +25%, −38%, −4.5% (whole points from ten percent on)."""
    if change is None or not math.isfinite(change):
        return MISSING
    text = _trimmed(abs(change) * 100, 0 if abs(change) >= 0.1 else 1) + "%"
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


def elapsed(seconds: float | None, lang: str) -> str:
    """How long something has lasted, to the second under an hour: 36秒 · 2分36秒 · 1小时02分 · 2天3小时 (zh),
    36s · 2m 36s · 1h 02m · 2d 3h (en)."""
    if seconds is None or not math.isfinite(seconds):
        return MISSING
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    mins, secs = divmod(rest, 60)
    zh = lang == "zh"
    if days:
        return f"{days}天{hours}小时" if zh else f"{days}d {hours}h"
    if hours:
        return f"{hours}小时{mins:02d}分" if zh else f"{hours}h {mins:02d}m"
    if mins:
        return f"{mins}分{secs:02d}秒" if zh else f"{mins}m {secs:02d}s"
    return f"{secs}秒" if zh else f"{secs}s"


def figure(value: float | None, unit: Unit, lang: str, currency: str | None = None) -> str:
    """One value as a person reads it, from its unit (see ``Unit``)."""
    if value is None or isinstance(value, bool) or not math.isfinite(value):
        return MISSING
    if unit == "ratio":
        return share(value)
    if unit == "change":
        return signed_share(value)
    if unit == "money":
        return money(value, currency, lang)
    if unit == "count":
        if abs(value) >= SENTENCE_EXACT_BELOW:
            return compact(value, lang)
        return f"{value:,.0f}" if float(value).is_integer() else _trimmed(value, 2)
    if unit == "minutes":
        return duration(value, lang)
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:,.0f}"
    return _trimmed(value, 2 if abs(value) >= 1 else 3)


def calendar_date(year: int, month: int, day: int, lang: str) -> str:
    """A date as the room reads it: 2026年12月6日 in Chinese, 2026-12-06 otherwise."""
    return f"{year}年{month}月{day}日" if lang == "zh" else f"{year:04d}-{month:02d}-{day:02d}"


def _nice_step(span: float, ticks: int) -> float:
    raw = span / max(1, ticks)
    power = 10 ** math.floor(math.log10(raw))
    return next(step * power for step in NICE_STEPS if step * power >= raw)


def _axis_label(value: float, lang: str, currency: str | None) -> str:
    """A tick's label: the unit of ``compact`` without its padding zeros (500万, 1.5亿, 2.5K)."""
    if value == 0:
        return _with_currency("0", currency)
    units = ZH_UNITS if lang == "zh" else EN_UNITS
    size, suffix = next(((s, u) for s, u in units if abs(value) >= s), (1.0, ""))
    text = _trimmed(value / size, 2) + suffix
    return _with_currency(text, currency) if currency else text.replace("-", MINUS)


def axis_ticks(
    low: float, high: float, lang: str, currency: str | None = None, ticks: int = AXIS_TICKS
) -> tuple[list[float], list[str]]:
    """Tick values and labels for a value axis over ``low``..``high`` in the room's units (Plotly's own formats know
    no 万/亿): ``tickvals`` and ``ticktext`` of a ``tickmode: "array"`` axis, the ticks covering the range."""
    if not (_finite(low) and _finite(high)):
        return [], []
    low, high = min(low, high), max(low, high)
    if high == low:
        high = low + (abs(low) or 1.0)
    step = _nice_step(high - low, ticks)
    first, last = math.floor(low / step), math.ceil(high / step)
    values = [round(i * step, 10) for i in range(first, last + 1)]
    return values, [_axis_label(v, lang, currency) for v in values]
