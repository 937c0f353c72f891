"""Alert markers on the wall's charts: one at the minute each firing alert fired, in its severity's colour and
shape (the same shapes as the alert panel's icons: colour is never the only sign)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from alerts.evaluation.severity import Severity
from alerts.evaluation.views import LiveAlert
from dashboard import i18n
from dashboard.axes import floor_minute
from dashboard.i18n import Language

COLOURS: dict[str, str] = {
    Severity.EMERGENCY.value: "#ff2d2d",
    Severity.WARNING.value: "#ffb020",
    Severity.REMINDER.value: "#3d9bff",
}
SYMBOLS: dict[str, str] = {
    Severity.EMERGENCY.value: "diamond",
    Severity.WARNING.value: "triangle-up",
    Severity.REMINDER.value: "circle",
}
SIZE = 26
"""Marker size in px at the 1920×1080 reference, like the chart's text."""
OUTLINE = "#070d1a"


@dataclass(frozen=True)
class Mark:
    """A marker: the local time it sits at on the chart, its height, the alert's severity."""

    x: str
    y: float | None
    severity: str


def alert_marks(alerts: Iterable[LiveAlert]) -> list[tuple[float, str]]:
    """The minute each alert fired (on its campaign's clock) and its severity, oldest first."""
    return sorted((floor_minute(a.fired_at), a.severity.value) for a in alerts if a.fired_at is not None)


def marks_update(marks: tuple[Mark, ...]) -> dict[str, Any]:
    """The marker trace's points and styles (a Patch replaces just these)."""
    return {
        "x": [m.x for m in marks],
        "y": [m.y for m in marks],
        "marker": {
            "color": [COLOURS.get(m.severity, COLOURS[Severity.REMINDER.value]) for m in marks],
            "symbol": [SYMBOLS.get(m.severity, "circle") for m in marks],
            "size": SIZE,
            "line": {"color": OUTLINE, "width": 3},
        },
    }


def marks_trace(marks: tuple[Mark, ...], lang: Language) -> dict[str, Any]:
    """The scatter trace of alert markers; no legend entry: their shapes are the alert panel's icons."""
    return {
        "type": "scatter",
        "mode": "markers",
        "name": i18n.text("alerts", lang),
        "showlegend": False,
        **marks_update(marks),
    }
