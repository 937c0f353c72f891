"""The wall's panels as Dash components, built from a metrics snapshot and the active alerts.

Pure functions: data in, component tree out, so the push loop can compare
what it would send with what it sent and tests can read the result without a
browser. CSS classes (assets/wall.css) carry the colours; the ``data-*``
attributes name what a row shows, for tests and for the watchdog.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import html

from alerts.evaluation.rules import SEVERITY_RANK
from dashboard import i18n
from dashboard.i18n import Language
from dashboard.kpis import Tile
from dashboard.numbers import age, compact, countdown, duration, money, percent

INVENTORY_ROWS = 8
CHANNEL_ROWS = 6
ALERT_ROWS = 8
MIN_BAR_PCT = 1.5
"""A non-zero count always shows a sliver of bar."""
ICONS = {"emergency": "◆", "warning": "▲", "reminder": "●"}
"""Shapes every CJK font has (emoji fonts are often missing on kiosk machines), distinct even without colour."""


def header(snapshot: dict[str, Any], now: float, lang: Language) -> dict[str, str]:
    """Campaign name, phase, countdown to the next phase and the clock in the campaign's time zone."""
    name = (snapshot.get("name_zh") if lang == "zh" else None) or snapshot.get("name") or snapshot.get("campaign", "")
    zone = ZoneInfo(snapshot.get("timezone") or "UTC")
    next_phase = snapshot.get("next_phase")
    if next_phase:
        starts = datetime.fromisoformat(next_phase["starts_at"]).timestamp()
        label = i18n.text("next_phase", lang, phase=i18n.phase(next_phase["phase"], lang))
        upcoming = f"{label} {countdown(starts - now, lang)}"
    else:
        upcoming = i18n.text("ended", lang) if snapshot.get("phase") is None and snapshot.get("events") else ""
    return {
        "wall-title": name,
        "wall-phase": i18n.phase(snapshot.get("phase"), lang),
        "wall-countdown": upcoming,
        "wall-clock": datetime.fromtimestamp(now, zone).strftime("%H:%M:%S"),
        "wall-zone": datetime.fromtimestamp(now, zone).strftime("%Y-%m-%d %Z"),
    }


def notice(snapshot: dict[str, Any], lang: Language) -> str:
    """What the numbers leave out, on one header line: keys past a limit, amounts in a currency with no rate."""
    parts = [
        i18n.text(
            "key_limit",
            lang,
            kind=i18n.key_kind(row["key"], lang),
            limit=f"{row['limit']:,}",
            events=compact(row["events"], lang),
        )
        for row in snapshot.get("key_limits") or []
    ]
    parts += [
        i18n.text(
            "unconverted",
            lang,
            currency=code,
            amount=money(totals["gmv_paid"], code, lang),
            events=compact(totals["events"], lang),
        )
        for code, totals in (snapshot.get("unconverted") or {}).items()
    ]
    return f"{ICONS['warning']} " + " · ".join(parts) if parts else ""


def _change_class(change: float | None) -> str:
    if change is None:
        return "change"
    return "change up" if change >= 0 else "change down"


def kpi_tiles(tiles: list[Tile]) -> list[html.Div]:
    """One tile per KPI; paid GMV spans two columns."""
    return [
        html.Div(
            [
                html.Div(tile.label, className="kpi-label"),
                html.Div(tile.value, className="kpi-value"),
                html.Div(tile.detail, className="kpi-detail") if tile.detail else None,
                html.Div(tile.change_text, className=_change_class(tile.change)),
            ],
            className="kpi wide" if tile.key == "gmv_paid" else "kpi",
            **data_attributes(kpi=tile.key),
        )
        for tile in tiles
    ]


def data_attributes(**values: str) -> dict[str, Any]:
    """``data-*`` attributes for a Dash component, which takes them only as keywords (``on_hand`` becomes
    ``data-on-hand``)."""
    return {f"data-{name.replace('_', '-')}": value for name, value in values.items()}


def _bar(pct: float, extra: str = "") -> html.Div:
    width = max(MIN_BAR_PCT, min(100.0, pct)) if pct > 0 else 0
    return html.Div(html.Div(className=f"bar-fill {extra}".strip(), style={"width": f"{width:.1f}%"}), className="bar")


def funnel(snapshot: dict[str, Any], lang: Language) -> list[html.Div]:
    """Stages with count, bar (share of visits), step conversion against benchmark and last year."""
    stages = snapshot.get("funnel") or []
    top = max((s["count"] for s in stages), default=0) or 1
    rows = []
    for s in stages:
        compare = []
        if s.get("benchmark") is not None:
            compare.append(f"{i18n.text('benchmark', lang)} {percent(s['benchmark'], 0)}")
        if s.get("baseline_step_rate") is not None:
            compare.append(f"{i18n.text('baseline', lang)} {percent(s['baseline_step_rate'])}")
        below = bool(s.get("below_baseline"))
        rows.append(
            html.Div(
                [
                    html.Div(i18n.stage(s["stage"], lang), className="stage-name"),
                    _bar(s["count"] / top * 100, "bad" if below else ""),
                    html.Div(compact(s["count"], lang), className="stage-count"),
                    html.Div(
                        percent(s.get("step_rate")) if s.get("step_rate") is not None else "", className="stage-rate"
                    ),
                    html.Div(" · ".join(compare), className="stage-compare"),
                ],
                className="funnel-row below" if below else "funnel-row",
                **{"data-stage": s["stage"], "data-count": str(s["count"])},
            )
        )
    return rows


def _stock_level(row: dict[str, Any]) -> str:
    if row.get("oversold"):
        return "oversold"
    if row.get("sold_out"):
        return "sold-out"
    if row.get("below_safety"):
        return "critical"
    if row.get("below_warning"):
        return "low"
    return "ok"


def _sku_name(row: dict[str, Any], lang: Language) -> str:
    return (row.get("name_zh") if lang == "zh" else None) or row.get("name") or row["sku"]


def inventory(snapshot: dict[str, Any], lang: Language) -> list[html.Div]:
    """Sold-out and oversold SKUs first (highlighted), then the hot SKUs soonest to sell out, with stock bars."""
    rows = [r for r in snapshot.get("skus") or [] if r.get("on_hand") is not None]
    out_of_stock = [r for r in rows if r.get("sold_out")]
    selling = [r for r in rows if not r.get("sold_out")]
    out: list[html.Div] = []
    for kind, chosen in (
        ("oversold", [r for r in out_of_stock if r.get("oversold")]),
        ("sold_out", [r for r in out_of_stock if not r.get("oversold")]),
    ):
        if chosen:
            out.append(
                html.Div(
                    [html.Span(i18n.text(kind, lang), className="chip-label")]
                    + [
                        html.Span(
                            f"{_sku_name(r, lang)} ({r['on_hand']})" if kind == "oversold" else _sku_name(r, lang),
                            className="chip",
                            **{"data-sku": r["sku"]},
                        )
                        for r in chosen
                    ],
                    className=f"stock-list {kind.replace('_', '-')}",
                )
            )
    header_row = html.Div(
        [html.Div(i18n.text(k, lang), className=f"col-{k}") for k in ("sku", "on_hand", "sell_rate", "eta")],
        className="sku-row sku-head",
    )
    out.append(header_row)
    for r in selling[:INVENTORY_ROWS]:
        scale = (r["on_hand"] + (r.get("units_sold") or 0)) or 1
        level = _stock_level(r)
        markers = [
            html.Div(className=f"marker {name}", style={"left": f"{min(100.0, r[name] / scale * 100):.1f}%"})
            for name in ("safety_stock", "warning_level")
            if r.get(name)
        ]
        out.append(
            html.Div(
                [
                    html.Div(_sku_name(r, lang), className="col-sku"),
                    html.Div(
                        [_bar(r["on_hand"] / scale * 100, level), *markers, html.Span(compact(r["on_hand"], lang))],
                        className="col-on_hand stock",
                    ),
                    html.Div(f"{r.get('sell_rate_per_min') or 0:,.1f}", className="col-sell_rate"),
                    html.Div(duration(r.get("sell_out_eta_min"), lang), className="col-eta"),
                ],
                className=f"sku-row {level}",
                **{"data-sku": r["sku"], "data-on-hand": str(r["on_hand"])},
            )
        )
    if not rows:
        out.append(html.Div(i18n.text("no_data", lang), className="empty"))
    return out


def channels(snapshot: dict[str, Any], lang: Language) -> list[html.Div]:
    """Paid GMV per channel (share bar, amount) and its conversion rate, largest first."""
    rows = snapshot.get("channels") or []
    total = sum(c["gmv_paid"] for c in rows) or 1
    currency = snapshot.get("currency")
    if not rows:
        return [html.Div(i18n.text("no_data", lang), className="empty")]
    return [
        html.Div(
            [
                html.Div(i18n.channel(c["channel"], lang), className="channel-name"),
                _bar(c["gmv_paid"] / total * 100),
                html.Div(money(c["gmv_paid"], currency, lang), className="channel-gmv"),
                html.Div(percent(c["gmv_paid"] / total, 0), className="channel-share"),
                html.Div(percent(c.get("conversion_rate"), 2), className="channel-cr"),
            ],
            className="channel-row",
            **{"data-channel": c["channel"]},
        )
        for c in rows[:CHANNEL_ROWS]
    ]


def _summary(alert: dict[str, Any], lang: Language) -> str:
    return alert.get("summary_zh" if lang == "zh" else "summary_en") or alert.get("rule", "")


def ordered(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Most severe first, then the newest."""
    return sorted(alerts, key=lambda a: (-SEVERITY_RANK.get(a["severity"], 0), -(a.get("fired_at") or 0)))


def alert_feed(alerts: list[dict[str, Any]], now: float, lang: Language) -> list[html.Div]:
    """Active alerts with severity colour, icon, summary and age."""
    if not alerts:
        return [html.Div(i18n.text("no_alerts", lang), className="empty ok")]
    return [
        html.Div(
            [
                html.Span(ICONS.get(a["severity"], "•"), className="alert-icon"),
                html.Span(i18n.severity(a["severity"], lang), className="alert-severity"),
                html.Span(_summary(a, lang), className="alert-summary"),
                html.Span(i18n.text("acknowledged", lang), className="alert-ack") if a.get("acknowledged") else None,
                html.Span(age(now - (a.get("fired_at") or now), lang), className="alert-age"),
            ],
            className=f"alert {a['severity']}",
            **{"data-alert": a["id"]},
        )
        for a in ordered(alerts)[:ALERT_ROWS]
    ]


def banner(alerts: list[dict[str, Any]], lang: Language) -> tuple[list[html.Div], str]:
    """The full-width emergency banner: every unacknowledged emergency; hidden when there is none."""
    urgent = [a for a in ordered(alerts) if a["severity"] == "emergency" and not a.get("acknowledged")]
    if not urgent:
        return [], "banner hidden"
    items = [
        html.Div(
            [
                html.Span(ICONS["emergency"], className="banner-icon"),
                html.Span(_summary(a, lang), className="banner-text"),
            ],
            className="banner-item",
            **{"data-alert": a["id"]},
        )
        for a in urgent
    ]
    items.append(html.Div(i18n.text("banner_hint", lang), className="banner-hint"))
    return items, "banner"
