"""The GMV curve: cumulative paid GMV against the target pace and last year's curve, and its incremental updates.

Bins are anchored at the campaign start and their width only grows as the
night goes on, so between two pushes the curve usually just gains points and
its last (still open) bin moves: that is sent as a ``Patch`` (set the last
point, extend the lists) instead of the whole figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import Patch

from app.metrics import pacing as pacing_math
from app.metrics.engine import Engine
from app.metrics.series import SECONDS_KEPT
from dashboard import i18n
from dashboard.i18n import Language

MAX_POINTS = 300
BIN_WIDTHS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
DEFAULT_SPAN_S = 3600.0
"""Without a campaign definition the curve shows the last hour."""
NO_CAMPAIGN_ZONE = "UTC"
"""Without a campaign definition the x axis reads in UTC (as the header's clock), never in the server's zone."""
TRACES = ("actual", "pace", "baseline")
COLOURS = {"actual": "#ffb000", "pace": "#9aa4b2", "baseline": "#4aa8ff"}
FONT_SIZE = 20
ALL_TIME_END = 4e9
"""An epoch beyond any event (year 2096): with 0 it bounds "every bucket"."""


@dataclass(frozen=True)
class Curve:
    """Bin ends (on the campaign's clock, in its time zone) and the three cumulative series at each of them."""

    start: float
    bin_s: int
    x: list[str]
    actual: list[float]
    pace: list[float | None]
    baseline: list[float | None]


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


def gmv_curve(engine: Engine, campaign_id: str, now: float, gmv_now: float) -> Curve:
    """The curve from the campaign start (or the last hour) to ``now``."""
    campaign = engine.campaigns.get(campaign_id)
    start = campaign.start.timestamp() if campaign is not None else now - DEFAULT_SPAN_S
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
    if campaign is not None and offset is not None and campaign.baseline in engine.states:
        base_id = campaign.baseline or ""
        base_points = _points(engine, base_id, 60, 0.0, ALL_TIME_END)
        baseline = list(cumulative_at(base_points, 0.0, 60, (t - offset for t in ends)))
        final = sum(v for _, v in base_points)
        shares = [b / final for b in baseline] if final else None  # type: ignore[operator]
    target = campaign.targets.gmv if campaign is not None else None
    if target and shares is not None and shares[-1] >= pacing_math.MIN_SHARE:
        pace: list[float | None] = [target * s for s in shares]
    elif target and campaign is not None:
        pace = [target * pacing_math.plan_share(campaign, t) for t in ends]
    else:
        pace = [None] * len(ends)
    zone = ZoneInfo(campaign.timezone if campaign is not None else NO_CAMPAIGN_ZONE)
    x = [datetime.fromtimestamp(t, zone).replace(tzinfo=None).isoformat(timespec="seconds") for t in ends]
    return Curve(start, width, x, actual, pace, baseline)


def figure(curve: Curve, lang: Language) -> dict[str, Any]:
    """The whole Plotly figure (sent on connect and whenever the bins change)."""
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
    layout = {
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"color": "#e8edf5", "size": FONT_SIZE},
        "margin": {"l": 90, "r": 20, "t": 10, "b": 50},
        "legend": {"orientation": "h", "x": 0, "y": 1.12, "font": {"size": FONT_SIZE}},
        "xaxis": {"gridcolor": "#263245", "showgrid": True},
        "yaxis": {
            "gridcolor": "#263245",
            "rangemode": "tozero",
            "separatethousands": True,
            "tickformat": "~s" if lang == "en" else ",.0f",
        },
        "uirevision": "gmv",
    }
    return {"data": data, "layout": layout}


def update(previous: Curve | None, current: Curve) -> Patch | None:
    """A Patch turning ``previous`` into ``current`` when the bins line up; None when a whole figure is needed."""
    if previous is None or previous.start != current.start or previous.bin_s != current.bin_s:
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
    return patch
