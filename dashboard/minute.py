"""The per-minute panel: paid GMV in each of the last complete minutes against last year's same minute.

A cumulative curve hides a ten-minute drop (its slope barely bends); bars per minute show it at once, and a
bar well below last year's same minute turns red. Only complete minutes are drawn: the open one would always
look like a drop. The figure is small (one bar a minute), so it is sent whole when it changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from alerts.evaluation.views import LiveAlert
from app.metrics.engine import Engine
from dashboard import axes, i18n
from dashboard.curve import NO_CAMPAIGN_ZONE, chart_layout
from dashboard.i18n import Language
from dashboard.marks import Mark, alert_marks, marks_trace

WINDOW_MIN = 60
"""Minutes shown: the last hour, long enough to see a drop begin and end."""
DROP = 0.2
"""A minute this far below last year's same minute is drawn red (the playbooks' static "sales down 20%")."""
BAR_COLOUR = "#ffb000"
DROP_COLOUR = "#ff4d4f"
BASELINE_COLOUR = "#4aa8ff"
BAR_SHARE = 0.8
"""Bar width as a share of the minute."""


def _by_minute(engine: Engine, campaign_id: str, start: float, end: float, shift: float = 0.0) -> dict[float, float]:
    series = engine.series(campaign_id, "gmv_paid", 60, start - shift, end - shift)
    if not series:
        return {}
    return {datetime.fromisoformat(str(t)).timestamp() + shift: float(v or 0) for t, v in series[0].points}


def figure(
    engine: Engine, campaign_id: str, now: float, lang: Language, alerts: Sequence[LiveAlert] = ()
) -> dict[str, Any]:
    """Bars for this year's last WINDOW_MIN complete minutes to ``now`` (the campaign's clock), last year's same
    minutes as a line, and a marker at each alert's minute."""
    campaign = engine.campaigns.get(campaign_id)
    zone = ZoneInfo(campaign.timezone if campaign is not None else NO_CAMPAIGN_ZONE)
    end = axes.floor_minute(now)
    start = end - WINDOW_MIN * 60
    minutes = [start + 60 * i for i in range(WINDOW_MIN)]
    today = _by_minute(engine, campaign_id, start, end)
    offset = engine.baseline_offset(campaign) if campaign is not None else None
    last_year = (
        _by_minute(engine, campaign.baseline, start, end, offset)
        if campaign is not None and campaign.baseline and offset is not None and campaign.baseline in engine.states
        else {}
    )
    values = [today.get(m, 0.0) for m in minutes]
    reference = [last_year.get(m) for m in minutes]
    colours = [
        DROP_COLOUR if ref is not None and ref > 0 and value < ref * (1 - DROP) else BAR_COLOUR
        for value, ref in zip(values, reference, strict=True)
    ]
    centres = [axes.local(m + 30, zone) for m in minutes]
    fired = [(t, level) for t, level in alert_marks(alerts) if start <= t < end]
    marks = tuple(Mark(axes.local(t + 30, zone), today.get(t, 0.0), level) for t, level in fired)
    highest = max([*values, *(r for r in reference if r is not None)], default=0.0)
    currency = campaign.currency if campaign is not None else None
    data: list[dict[str, Any]] = [
        {
            "type": "bar",
            "name": i18n.text("actual", lang),
            "x": centres,
            "y": values,
            "width": 60_000 * BAR_SHARE,
            "marker": {"color": colours},
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": i18n.text("baseline_minute", lang),
            "x": centres,
            "y": reference,
            "line": {"color": BASELINE_COLOUR, "width": 4, "dash": "dot", "shape": "hvh"},
            "connectgaps": False,
        },
        marks_trace(marks, lang),
    ]
    title = i18n.text("last_minutes", lang, minutes=str(WINDOW_MIN))
    layout = {
        **chart_layout(
            axes.time_axis(start, end, zone, lang, title), axes.value_axis(highest, lang, currency), x_grid=False
        ),
        "bargap": 0,
        "uirevision": "minute",
    }
    return {"data": data, "layout": layout}
