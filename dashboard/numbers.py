"""How numbers read on the wall: 万/亿 in Chinese, K/M/B in English, the campaign's currency, signed changes.

The formats themselves live in ``app.core.quantities``, shared with the alert texts so a value reads the same on the
wall, the on-call page and in a chat message; here are the wall's own (countdowns, ages, changes against a
reference). Pure formatting, no I/O, so every rule here is unit-tested.
"""

from __future__ import annotations

from app.core.quantities import MISSING as MISSING
from app.core.quantities import axis_ticks as axis_ticks
from app.core.quantities import calendar_date as calendar_date
from app.core.quantities import column as column
from app.core.quantities import compact as compact
from app.core.quantities import duration as duration
from app.core.quantities import elapsed as elapsed
from app.core.quantities import money as money
from app.core.quantities import percent as percent
from app.core.quantities import signed_percent as signed_percent


def relative_change(current: float | None, reference: float | None) -> float | None:
    """current ÷ reference − 1, or None when there is nothing to compare with."""
    if current is None or reference is None or reference == 0:
        return None
    return current / reference - 1


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
