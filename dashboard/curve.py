"""The GMV curve: cumulative paid GMV over the night against the target pace and last year's curve, with a
marker where each alert fired, and its incremental updates.

The window is the night: from NIGHT_LEAD_S before the burst starts (so the run-up to midnight stays in view) to
now; before that, the pre-heat's latest hours (from a whole hour, so the window moves once an hour). Bins are
anchored at the window's start and their width only grows as the night goes on, so between two pushes the curve
usually just gains points and its last (still open) bin moves: that is sent as a ``Patch`` (set the last point,
extend the lists, move the axes) instead of the whole figure.

The target pace is the target times the share of the final GMV expected by each moment: last year's cumulative
share once last year's whole night is loaded (none while it is still loading, as the KPI's projection), or the
phase plan for a campaign without a last year (or with an empty one). One method draws the whole line (a change
of method redraws the figure), so the pace only rises. Mixing them made it fall after midnight: the plan expects
30 % by midnight (the pre-heat's share), last year's curve about 1 %.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import Patch

from alerts.evaluation.views import LiveAlert
from app.campaigns.model import Campaign
from app.metrics import pacing as pacing_math
from app.metrics.engine import Engine
from app.metrics.series import SECONDS_KEPT
from dashboard import axes, i18n
from dashboard.i18n import Language
from dashboard.marks import Mark, alert_marks, marks_trace, marks_update

MAX_POINTS = 300
BIN_WIDTHS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
DEFAULT_SPAN_S = 3600.0
"""Without a campaign definition the curve shows the last hour."""
NIGHT_LEAD_S = 900.0
"""The night's window opens this long before the burst."""
PREHEAT_WINDOW_S = 3600.0
"""Before the night's window, the curve shows at least this much of the pre-heat, from a whole hour."""
NO_CAMPAIGN_ZONE = "UTC"
"""Without a campaign definition the x axis reads in UTC (as the header's clock), never in the server's zone."""
TRACES = ("actual", "pace", "baseline")
COLOURS = {"actual": "#ffb000", "pace": "#9aa4b2", "baseline": "#4aa8ff"}
FONT_SIZE = 24
"""Chart text in px at the 1920×1080 reference; the page scales the whole chart with the viewport (wall.css)."""
TEXT_COLOUR = "#e8edf5"
MARGIN = {"l": 8, "r": 44, "t": 40, "b": 8}
"""Room around the plot; the axes widen it to fit their labels (automargin). On the right, half a time label
("00:00" at FONT_SIZE): a tick at the window's end is never cut, so plotly need not measure every label to hide
the ones that would be (``ticklabeloverflow: allow``, a sixth of a redraw's CPU)."""
GRID_COLOUR = "#263245"
ALL_TIME_END = 4e9
"""An epoch beyond any event (year 2096): with 0 it bounds "every bucket"."""


@dataclass(frozen=True)
class Curve:
    """Bin ends (on the campaign's clock, in its time zone) and the three cumulative series at each of them, how
    the pace was made, the axes and the alert markers."""

    start: float
    bin_s: int
    x: list[str]
    actual: list[float]
    pace: list[float | None]
    baseline: list[float | None]
    pace_method: str = "none"
    axes: dict[str, Any] = field(default_factory=dict)
    marks: tuple[Mark, ...] = ()


def bin_width(span_s: float) -> int:
    """The narrowest bin giving at most MAX_POINTS points; under a minute only while per-second data covers the span."""
    for width in BIN_WIDTHS_S:
        if width < 60 and span_s > SECONDS_KEPT * 0.9:
            continue
        if span_s / width <= MAX_POINTS:
            return width
    return BIN_WIDTHS_S[-1]


def bin_ends(start: float, now: float, width: int) -> list[float]:
    """Ends of the bins from ``start``: every full bin, then ``now`` for the open one."""
    ends = []
    t = start + width
    while t < now:
        ends.append(t)
        t += width
    ends.append(now)
    return ends


def cumulative_at(points: list[tuple[float, float]], prior: float, step: int, moments: Iterable[float]) -> list[float]:
    """Running total of bucketed ``points`` (sorted, bucket starts) at each moment, a bucket counted pro rata."""
    out = []
    total, i = prior, 0
    for moment in moments:
        while i < len(points) and points[i][0] + step <= moment:
            total += points[i][1]
            i += 1
        partial = 0.0
        if i < len(points) and points[i][0] < moment:
            partial = points[i][1] * (moment - points[i][0]) / step
        out.append(total + partial)
    return out


def _points(engine: Engine, campaign_id: str, step: int, start: float, end: float) -> list[tuple[float, float]]:
    series = engine.series(campaign_id, "gmv_paid", step, start, end)
    if not series:
        return []
    return [(datetime.fromisoformat(str(t)).timestamp(), float(v or 0)) for t, v in series[0].points]


def window(campaign: Campaign | None, now: float) -> tuple[float, float | None]:
    """Where the curve starts, and the burst's start when the window is the night's (None before it)."""
    if campaign is None:
        return now - DEFAULT_SPAN_S, None
    burst = campaign.phases.burst.start.timestamp()
    night = burst - NIGHT_LEAD_S
    if now >= night:
        return night, burst
    hour_ago = (now - PREHEAT_WINDOW_S) // 3600 * 3600
    return max(campaign.start.timestamp(), hour_ago), None


def window_title(start: float, burst: float | None, zone: ZoneInfo, lang: Language) -> str:
    """What the x axis spans, said on the axis: the night from a given time, or the pre-heat's latest hours."""
    if burst is None:
        return i18n.text("since", lang, start=axes.day_label(start, zone, lang))
    lead = f"{(burst - start) / 60:g}"
    return i18n.text("since_burst", lang, lead=lead, burst=axes.day_label(burst, zone, lang))


def gmv_curve(
    engine: Engine,
    campaign_id: str,
    now: float,
    gmv_now: float,
    lang: Language = "zh",
    wall: float | None = None,
    alerts: Sequence[LiveAlert] = (),
) -> Curve:
    """The curve over the night's window to ``now`` (the campaign's clock; ``wall`` is the server's, which says
    whether last year's night is loaded yet), with a marker at each alert's minute."""
    campaign = engine.campaigns.get(campaign_id)
    start, burst = window(campaign, now)
    start = min(start, now - 1)
    width = bin_width(now - start)
    step = 1 if width < 60 else 60
    ends = bin_ends(start, now, width)
    points = _points(engine, campaign_id, step, start, now + 1)
    prior = gmv_now - sum(v for _, v in points)
    actual = cumulative_at(points, prior, step, ends)
    baseline: list[float | None] = [None] * len(ends)
    shares: list[float] | None = None
    offset = engine.baseline_offset(campaign) if campaign is not None else None
    loaded = campaign is not None and engine.baseline_loaded(campaign, now if wall is None else wall)
    if campaign is not None and offset is not None and campaign.baseline in engine.states:
        base_id = campaign.baseline or ""
        base_points = _points(engine, base_id, 60, 0.0, ALL_TIME_END)
        cumulative = cumulative_at(base_points, 0.0, 60, (t - offset for t in ends))
        baseline = list(cumulative)
        final = sum(v for _, v in base_points)
        if final and loaded:
            shares = [b / final for b in cumulative]
    target = campaign.targets.gmv if campaign is not None else None
    if target and shares is not None:
        pace: list[float | None] = [target * s for s in shares]
        method = "baseline"
    elif target and offset is not None and not loaded:
        pace, method = [None] * len(ends), "awaiting"
    elif target and campaign is not None:
        pace = [target * pacing_math.plan_share(campaign, t) for t in ends]
        method = "plan"
    else:
        pace, method = [None] * len(ends), "none"
    zone = ZoneInfo(campaign.timezone if campaign is not None else NO_CAMPAIGN_ZONE)
    x = [axes.local(t, zone) for t in ends]
    highest = max([*actual, *(v for v in pace if v is not None), *(v for v in baseline if v is not None)], default=0)
    chart_axes = {
        "xaxis": axes.time_axis(start, now, zone, lang, window_title(start, burst, zone, lang)),
        "yaxis": axes.value_axis(highest, lang, campaign.currency if campaign is not None else None),
    }
    fired = [(t, level) for t, level in alert_marks(alerts) if start <= t <= now]
    heights = cumulative_at(points, prior, step, (t for t, _ in fired))
    marks = tuple(Mark(axes.local(t, zone), y, level) for (t, level), y in zip(fired, heights, strict=True))
    return Curve(start, width, x, actual, pace, baseline, method, chart_axes, marks)


def chart_layout(xaxis: dict[str, Any], yaxis: dict[str, Any], x_grid: bool = True) -> dict[str, Any]:
    """What both wall charts share: sizes at the 1920×1080 reference (the page scales the chart), a transparent
    ground, the legend on top, and axes whose tick labels are not measured for overflow at each redraw (the right
    margin holds half a time label), around the chart's own ``xaxis`` and ``yaxis``."""
    return {
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"color": TEXT_COLOUR, "size": FONT_SIZE},
        "margin": MARGIN,
        "legend": {"orientation": "h", "x": 0, "y": 1, "yanchor": "bottom", "font": {"size": FONT_SIZE}},
        "xaxis": {
            "gridcolor": GRID_COLOUR,
            "showgrid": x_grid,
            "automargin": True,
            "ticklabeloverflow": "allow",
            "ticklabelstandoff": 6,
            **xaxis,
        },
        "yaxis": {
            "gridcolor": GRID_COLOUR,
            "fixedrange": True,
            "automargin": True,
            "ticklabeloverflow": "allow",
            "ticklabelstandoff": 10,
            **yaxis,
        },
    }


def layout(curve: Curve) -> dict[str, Any]:
    """The cumulative curve's layout: the charts' shared one with the curve's axes."""
    return {
        **chart_layout(curve.axes.get("xaxis", {}), curve.axes.get("yaxis", {})),
        "showlegend": True,
        "uirevision": "gmv",
    }


def figure(curve: Curve, lang: Language) -> dict[str, Any]:
    """The whole Plotly figure (sent on connect and whenever the bins or the pace's method change)."""
    names = {
        "actual": i18n.text("actual", lang),
        "pace": i18n.text("target_pace", lang),
        "baseline": i18n.text("baseline", lang),
    }
    dashes = {"actual": "solid", "pace": "dash", "baseline": "dot"}
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": names[name],
            "x": list(curve.x),
            "y": list(getattr(curve, name)),
            "line": {"color": COLOURS[name], "width": 5 if name == "actual" else 3, "dash": dashes[name]},
            "fill": "tozeroy" if name == "actual" else None,
            "fillcolor": "rgba(255,176,0,0.12)" if name == "actual" else None,
        }
        for name in TRACES
    ]
    data.append(marks_trace(curve.marks, lang))
    return {"data": data, "layout": layout(curve)}


def update(previous: Curve | None, current: Curve) -> Patch | None:
    """A Patch turning ``previous`` into ``current`` when the bins and the pace's method line up; None when a whole
    figure is needed."""
    if (
        previous is None
        or previous.start != current.start
        or previous.bin_s != current.bin_s
        or previous.pace_method != current.pace_method
    ):
        return None
    keep = len(previous.x) - 1
    if keep < 0 or len(current.x) <= keep or current.x[:keep] != previous.x[:keep]:
        return None
    patch = Patch()
    for i in range(len(TRACES)):
        patch["data"][i]["x"][keep] = current.x[keep]
        patch["data"][i]["y"][keep] = getattr(current, TRACES[i])[keep]
        if len(current.x) > keep + 1:
            patch["data"][i]["x"].extend(current.x[keep + 1 :])
            patch["data"][i]["y"].extend(getattr(current, TRACES[i])[keep + 1 :])
    for name, settings in current.axes.items():
        if previous.axes.get(name) != settings:
            patch["layout"][name].update(settings)
    if previous.marks != current.marks:
        patch["data"][len(TRACES)].update(marks_update(current.marks))
    return patch
