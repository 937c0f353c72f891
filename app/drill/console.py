"""The demo's terminal: one status line kept at the bottom, and the night's news written above it.

On a terminal the status line is redrawn in place (``\\r``, cleared to its end, cut to the terminal's width so it never
wraps and scrolls); every other line (an incident, an alert, a log record, the drill's notes) is written above it:
the status line is cleared, the line written, the status line drawn again. Not on a terminal (a pipe, a file, CI)
the status is a plain line every ``PLAIN_STATUS_EVERY_S`` and the news lines come as they happen.

The lines themselves are pure text in the terminal's language (``status_line``, ``alert_line``, ``incident_line``);
numbers, phases and severities read as they do on the wall (``dashboard.numbers``, ``dashboard.i18n``), an alert's
summary is the alert's own, as the engine rendered it.
"""

from __future__ import annotations

import io
import shutil
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO, cast
from zoneinfo import ZoneInfo

from alerts.evaluation.severity import MOST_SEVERE_FIRST
from dashboard import i18n, numbers
from dashboard.i18n import Language

PLAIN_STATUS_EVERY_S = 10.0
"""Not on a terminal, the status is one plain line this often (a log file gets a heartbeat, not a flood)."""
CLEAR_LINE = "\r\x1b[K"
"""Back to the start of the line and erase it."""
WIDE = ("W", "F")
"""East Asian widths that take two columns of a terminal (Chinese text)."""
SEPARATOR = " · "

TRANSITIONS: Mapping[str, tuple[str, str]] = {
    "firing": ("触发", "FIRING"),
    "escalated": ("升级", "ESCALATED"),
    "deescalated": ("降级", "DE-ESCALATED"),
    "resolved": ("恢复", "RESOLVED"),
    "acknowledged": ("已确认", "ACKNOWLEDGED"),
}
"""What an alert transition is called on the terminal, (zh, en)."""
INCIDENTS: Mapping[str, tuple[str, str]] = {
    "payment_outage": ("支付故障：绝大多数支付失败", "payment outage: almost every payment fails"),
    "sellout": ("爆款售罄：最热商品需求翻三倍且不再补货", "sell-out: the hottest product's demand triples, no restock"),
    "slow_pages": ("页面变慢：页面加载变慢，下单转化大跌", "slow pages: pages load slowly and orders fall"),
    "gmv_drop": ("GMV 下滑：结算转下单少 60%", "GMV drop: checkouts turn into orders 60% less often"),
    "brushing": ("刷单：少数买家集中大量下单", "order brushing: a few buyers place a flood of orders"),
}
"""What each scripted incident of the drill does, (zh, en)."""
WORDS: Mapping[str, tuple[str, str]] = {
    "rehearsal": ("演练", "rehearsal"),
    "events_per_s": ("事件/秒", "events/s"),
    "no_alerts": ("无告警", "no alerts"),
    "alerts": ("告警 {count} 条", "{count} alerts firing"),
    "incident": ("事故", "INCIDENT"),
    "starts": (
        "{name} 开始（演练脚本，持续 {minutes} 分钟）：{what}",
        "{name} starts (drill script, lasts {minutes} min): {what}",
    ),
}


def _word(key: str, lang: Language, **fields: object) -> str:
    zh, en = WORDS[key]
    return (zh if lang == "zh" else en).format(**fields)


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: two for each Chinese character, none for a combining mark."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in WIDE else 1 for c in text)


def fit(text: str, columns: int) -> str:
    """``text`` cut to ``columns`` terminal columns (an ellipsis says it was cut)."""
    if display_width(text) <= columns:
        return text
    kept, used = [], 0
    for c in text:
        width = display_width(c)
        if used + width > columns - 1:
            break
        kept.append(c)
        used += width
    return "".join(kept) + "…"


@dataclass(frozen=True, slots=True)
class Status:
    """What the status line shows: where the night stands and how busy it is."""

    night_clock: str
    """The campaign's clock, e.g. ``00:03:12``."""
    rehearsal: bool
    """The night is a replay on its own clock (the demo always is)."""
    phase: str | None
    events_per_s: float | None
    gmv: float | None
    currency: str | None
    alerts: Mapping[str, int] = field(default_factory=dict)
    """Firing alerts by severity."""


def status_line(status: Status, lang: Language) -> str:
    """``演练 00:03:12 · 爆发期 · 3,412 事件/秒 · GMV ¥123.4万 · 告警 2 条（紧急 1 · 警告 1）``."""
    clock = status.night_clock
    rate = None if status.events_per_s is None else round(status.events_per_s)
    parts = [
        f"{_word('rehearsal', lang)} {clock}" if status.rehearsal else clock,
        i18n.phase(status.phase, lang),
        f"{numbers.compact(rate, lang)} {_word('events_per_s', lang)}",
        f"GMV {numbers.money(status.gmv, status.currency, lang)}",
    ]
    firing = sum(status.alerts.values())
    if firing:
        counts = " · ".join(
            f"{i18n.severity(s, lang)} {status.alerts[s]}" for s in MOST_SEVERE_FIRST if status.alerts.get(s)
        )
        parts.append(f"{_word('alerts', lang, count=firing)}" + (f"（{counts}）" if lang == "zh" else f" ({counts})"))
    else:
        parts.append(_word("no_alerts", lang))
    return SEPARATOR.join(parts)


def night_clock(moment: datetime, timezone: str) -> str:
    """A moment on the campaign's wall clock, ``00:03:12``."""
    return moment.astimezone(ZoneInfo(timezone)).strftime("%H:%M:%S")


def alert_line(transition: Mapping[str, Any], lang: Language) -> str:
    """One alert transition from the alert stream: its time on the campaign's clock, what happened, the severity, the
    rule and the alert's own summary in ``lang``, e.g. ``00:28:05 FIRING       Emergency payment_success_rate_low —
    Payment success rate 82.1% …``."""
    at = night_clock(datetime.fromisoformat(transition["at"]), transition.get("timezone") or "UTC")
    zh, en = TRANSITIONS.get(transition["kind"], (transition["kind"], transition["kind"].upper()))
    kind = zh if lang == "zh" else en
    severity = i18n.severity(transition["severity"], lang)
    summary = transition.get(f"summary_{lang}") or transition.get("summary_en") or ""
    return f"{at} {_pad(kind, 13)}{_pad(severity, 10)}{transition['rule']} — {summary}"


def incident_line(name: str, clock: str, minutes: float, lang: Language) -> str:
    """A scripted incident starting: ``00:28:00 INCIDENT     payment_outage starts (drill script, lasts 6 min): …``."""
    zh, en = INCIDENTS.get(name, (name, name))
    what = _word("starts", lang, name=name, minutes=f"{minutes:g}", what=zh if lang == "zh" else en)
    return f"{clock} {_pad(_word('incident', lang), 13)}{what}"


def _pad(text: str, columns: int) -> str:
    """``text`` and spaces up to ``columns`` terminal columns (at least one space), so columns line up in zh too."""
    return text + " " * max(1, columns - display_width(text))


class Console:
    """The terminal of ``out``: a status line in place at the bottom (on a terminal) and lines above it.

    Thread-safe: the server's logs, the drill and the watcher write from different threads."""

    def __init__(
        self,
        out: TextIO,
        plain_every_s: float = PLAIN_STATUS_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        columns: Callable[[], int] = lambda: shutil.get_terminal_size().columns,
    ) -> None:
        self.tty = out.isatty()
        self._out = out
        self._plain_every_s = plain_every_s
        self._clock = clock
        self._columns = columns
        self._status = ""
        self._plain_at: float | None = None
        self._closed = False
        self._lock = threading.RLock()

    def line(self, text: str, stream: TextIO | None = None) -> None:
        """Write ``text`` (one line or several) above the status line, to ``stream`` (default the console's own)."""
        target = stream or self._out
        with self._lock:
            drawn = self.tty and bool(self._status)
            if drawn:
                self._out.write(CLEAR_LINE)
                self._out.flush()
            target.write(text if text.endswith("\n") else text + "\n")
            target.flush()
            if drawn:
                self._draw()

    def status(self, text: str) -> None:
        """Show ``text`` as the status: in place on a terminal, else as a plain line if ``plain_every_s`` passed;
        nothing once closed."""
        with self._lock:
            if self._closed:
                return
            if self.tty:
                self._status = text
                self._draw()
            elif self._plain_at is None or self._clock() - self._plain_at >= self._plain_every_s:
                self._plain_at = self._clock()
                self._out.write(text + "\n")
                self._out.flush()

    def close(self) -> None:
        """Leave the last status on its own line, so what comes after (the shell's prompt) starts on a fresh one."""
        with self._lock:
            if self.tty and self._status:
                self._out.write("\n")
                self._out.flush()
            self._status = ""
            self._closed = True

    def writer(self, stream: TextIO) -> TextIO:
        """A stream whose lines go to ``stream`` above the status line (for ``sys.stderr``: logs, warnings)."""
        return cast(TextIO, _Above(self, stream))

    def _draw(self) -> None:
        self._out.write(CLEAR_LINE + fit(self._status, max(self._columns() - 1, 1)))
        self._out.flush()


class _Above(io.TextIOBase):
    """Collects what is written into whole lines and hands each to ``Console.line``."""

    def __init__(self, console: Console, stream: TextIO) -> None:
        self._console = console
        self._stream = stream
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
        if lines:
            self._console.line("\n".join(lines), self._stream)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._stream.encoding
