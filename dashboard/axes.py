"""Chart axes the wall computes itself, because plotly.js cannot: ticks at whole seconds or minutes of the night's
clock, dates in the page's language, and amounts in 万/亿 (zh) or K/M/B (en).

Pure: the push loop sends these settings with each figure (or in a Patch when only the range moved).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dashboard.i18n import Language
from dashboard.numbers import axis_tick

TIME_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
"""Tick spacings a person reads at a glance: whole seconds, minutes, hours or days."""
MAX_TIME_TICKS = 6
"""At most this many time ticks: at the wall's tick size more would run into each other."""
MAX_VALUE_TICKS = 4
"""Gridlines above zero on a value axis."""
HEADROOM = 1.08
"""The value axis ends this far above the highest point, so the line never touches the panel's top."""
DAY_FORMATS: dict[Language, str] = {"zh": "%-m月%-d日", "en": "%b %-d"}


def time_step(span_s: float) -> int:
    """The smallest whole spacing giving at most MAX_TIME_TICKS ticks over ``span_s`` seconds."""
    for step in TIME_STEPS_S:
        if span_s / step <= MAX_TIME_TICKS:
            return step
    return TIME_STEPS_S[-1] * math.ceil(span_s / TIME_STEPS_S[-1] / MAX_TIME_TICKS)


def local(moment: float, zone: ZoneInfo) -> str:
    """An epoch second as the naive local ISO time plotly draws on a date axis (no zone: the axis is the night's)."""
    return datetime.fromtimestamp(moment, zone).replace(tzinfo=None).isoformat(timespec="seconds")


def time_axis(start: float, end: float, zone: ZoneInfo, lang: Language, title: str) -> dict[str, Any]:
    """A date axis over [start, end] in ``zone`` with ticks at whole steps counted from local midnight, labelled
    without milliseconds (and with the date, in the page's language, only when ticks are days apart)."""
    end = max(end, start + 1)
    step = time_step(end - start)
    midnight = datetime.fromtimestamp(start, zone).replace(hour=0, minute=0, second=0, microsecond=0)
    if step >= 86400:
        tickformat = DAY_FORMATS[lang]
    elif step >= 60:
        tickformat = "%H:%M"
    else:
        tickformat = "%H:%M:%S"
    return {
        "type": "date",
        "range": [local(start, zone), local(end, zone)],
        "tick0": midnight.replace(tzinfo=None).isoformat(timespec="seconds"),
        "dtick": step * 1000,
        "tickformat": tickformat,
        "hoverformat": "%H:%M:%S",
        "title": {"text": title},
    }


def nice_step(top: float, ticks: int = MAX_VALUE_TICKS) -> float:
    """A 1, 2, 2.5 or 5 × 10ⁿ spacing giving at most ``ticks`` gridlines from zero to ``top``."""
    if top <= 0 or not math.isfinite(top):
        return 1.0
    raw = top / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


def value_axis(highest: float, lang: Language, currency: str | None = None, floor: float = 1.0) -> dict[str, Any]:
    """A value axis from zero with a few round gridlines labelled like the rest of the wall (¥150万, ¥1.5M)."""
    top = max(highest, floor) * HEADROOM
    step = nice_step(top)
    values = [step * i for i in range(int(top / step) + 1)]
    return {
        "range": [0, top],
        "tickmode": "array",
        "tickvals": values,
        "ticktext": [axis_tick(v, lang, currency) for v in values],
    }


def day_label(moment: float, zone: ZoneInfo, lang: Language) -> str:
    """The date and time of ``moment`` as an axis title reads it: 11月11日 00:00 / Nov 11 00:00."""
    at = datetime.fromtimestamp(moment, zone)
    return f"{at.month}月{at.day}日 {at:%H:%M}" if lang == "zh" else f"{at:%b} {at.day} {at:%H:%M}"


def floor_minute(moment: float) -> float:
    """The start of the minute ``moment`` falls in (minutes are whole in every zone the wall shows)."""
    return math.floor(moment / 60) * 60
