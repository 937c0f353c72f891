"""The wall's page skeleton: fixed ids the push loop fills in. Nothing here is data; the server sends it all."""

from __future__ import annotations

from dash import dcc, html

from dashboard import i18n
from dashboard.i18n import Language

SECTION_TITLES = {
    "gmv": "gmv_curve",
    "minute": "per_minute",
    "funnel": "funnel",
    "inventory": "inventory",
    "channels": "channels",
    "alerts": "alerts",
}
REFERENCE_SIZE = {"width": "calc(100% / var(--scale))", "height": "calc(100% / var(--scale))"}
"""The chart's own size: its frame's at the 1920×1080 reference (dcc.Graph sets an inline height, so it goes here)."""
GRAPH_CONFIG: dcc.Graph.Config = {"displayModeBar": False, "responsive": True, "staticPlot": True}
"""A wall is never touched: a static plot has no drag, zoom or hover layers to rebuild at each redraw (the curve
redraws every second). Responsive, so the chart fills its frame whatever the viewport; it acts only on a resize."""


def _graph(graph_id: str) -> html.Div:
    """A chart drawn at the 1920×1080 reference size inside a frame the page scales with the viewport (wall.css):
    plotly.js sizes text in px and cannot read CSS, so its ticks, legend and markers scale with the panels only so.
    """
    return html.Div(
        dcc.Graph(id=graph_id, config=GRAPH_CONFIG, className="graph", style=REFERENCE_SIZE), className="graph-frame"
    )


def _section(name: str, body: html.Div, lang: Language) -> html.Section:
    """A titled panel; ``name`` is its anchor, which alert links point at (``/wall/<campaign>#inventory``)."""
    return html.Section(
        [html.H2(i18n.text(SECTION_TITLES[name], lang), id=f"title-{name}", className="panel-title"), body],
        id=name,
        className=f"panel panel-{name}",
    )


def build(lang: Language) -> html.Div:
    """The page, titled in the configured language until the first push names everything in the page's own."""
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            html.Div(id="wall-heartbeat", className="heartbeat"),
            html.Header(
                [
                    html.Div(id="wall-title", className="title"),
                    html.Div(id="wall-phase", className="phase"),
                    html.Div(id="wall-countdown", className="countdown"),
                    html.Div(id="wall-notice", className="notice"),
                    html.Div(className="spacer"),
                    html.Div(
                        [html.Div(id="wall-clock", className="clock"), html.Div(id="wall-zone", className="zone")],
                        className="time",
                    ),
                    html.Div(
                        [
                            html.Span(i18n.text("live", lang), id="live-label", className="live-label"),
                            html.Span(i18n.text("stale", lang), id="stale-label", className="stale-label"),
                        ],
                        id="wall-live",
                        className="live-indicator",
                    ),
                ],
                className="wall-header",
            ),
            html.Div(id="kpi-tiles", className="kpis"),
            html.Div(
                [
                    _section("gmv", _graph("gmv-curve"), lang),
                    _section("minute", _graph("minute-curve"), lang),
                    _section("funnel", html.Div(id="funnel-body", className="funnel"), lang),
                    _section("inventory", html.Div(id="inventory-body", className="inventory"), lang),
                    _section("channels", html.Div(id="channels-body", className="channels"), lang),
                    _section("alerts", html.Div(id="alerts-body", className="alert-feed"), lang),
                ],
                className="panels",
            ),
            html.Div(id="alert-banner", className="banner hidden"),
        ],
        className="wall",
    )
