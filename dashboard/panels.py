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

from alerts.evaluation.severity import Severity, rank
from alerts.evaluation.views import LiveAlert, is_news
from app.metrics.snapshot import ChannelRow, SkuRow, Snapshot
from dashboard import i18n
from dashboard.i18n import Language
from dashboard.kpis import Tile
from dashboard.numbers import age, calendar_date, column, compact, countdown, duration, money, percent

INVENTORY_ROWS = 6
"""Fewer, larger rows: the room reads six SKUs from across it, and "+N more" says the rest exist."""
CHANNEL_ROWS = 6
ALERT_ROWS = 2
"""The most severe alerts the panel has room for at row size (a row holds its severity, acknowledgment, age, and
a summary with its live value over up to two lines); "+N more alerts" counts the rest, the banner every emergency."""
BANNER_ITEMS = 2
"""The emergencies the banner names, most important first; "+N more" counts the rest (the alert panel and the on-call
page list them): a fixed height that never covers the panels, however many emergencies the night has."""
MIN_BAR_PCT = 1.5
"""A non-zero count always shows a sliver of bar."""
ICONS: dict[Severity, str] = {Severity.EMERGENCY: "◆", Severity.WARNING: "▲", Severity.REMINDER: "●"}
"""Shapes every CJK font has (emoji fonts are often missing on kiosk machines), distinct even without colour."""


def header(snapshot: Snapshot, now: float, lang: Language) -> dict[str, str]:
    """Campaign name, phase, countdown to the next phase and the clock in the campaign's time zone."""
    name = (snapshot.name_zh if lang == "zh" else None) or snapshot.name or snapshot.campaign
    zone = ZoneInfo(snapshot.timezone or "UTC")
    next_phase = snapshot.next_phase
    if next_phase:
        starts = datetime.fromisoformat(next_phase.starts_at).timestamp()
        label = i18n.text("next_phase", lang, phase=i18n.phase(next_phase.phase, lang))
        upcoming = f"{label} {countdown(starts - now, lang)}"
    else:
        upcoming = i18n.text("ended", lang) if snapshot.phase is None and snapshot.events else ""
    phase = i18n.phase(snapshot.phase, lang)
    moment = datetime.fromtimestamp(now, zone)
    if snapshot.clock == "replay":
        phase = f"{i18n.text('rehearsal', lang)} · {phase}" if phase else i18n.text("rehearsal", lang)
    return {
        "wall-title": name,
        "wall-phase": phase,
        "wall-countdown": upcoming,
        "wall-clock": datetime.fromtimestamp(now, zone).strftime("%H:%M:%S"),
        "wall-zone": f"{calendar_date(moment.year, moment.month, moment.day, lang)} {moment.strftime('%Z')}",
    }


def notice(snapshot: Snapshot, lang: Language) -> str:
    """What the numbers leave out, on one header line: keys past a limit, amounts in a currency with no rate."""
    parts = [
        i18n.text(
            "key_limit",
            lang,
            kind=i18n.key_kind(row.key, lang),
            limit=f"{row.limit:,}",
            events=compact(row.events, lang),
        )
        for row in snapshot.key_limits
    ]
    parts += [
        i18n.text(
            "unconverted",
            lang,
            currency=code,
            amount=money(totals.gmv_paid, code, lang),
            events=compact(totals.events, lang),
        )
        for code, totals in snapshot.unconverted.items()
    ]
    return f"{ICONS[Severity.WARNING]} " + " · ".join(parts) if parts else ""


def _data(**attributes: str) -> dict[str, Any]:
    """``data-*`` attributes (``on_hand`` → ``data-on-hand``), which Dash takes as keywords its hints do not list."""
    return {f"data-{name.replace('_', '-')}": value for name, value in attributes.items()}


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
            **_data(kpi=tile.key),
        )
        for tile in tiles
    ]


def _bar(pct: float, extra: str = "") -> html.Div:
    width = max(MIN_BAR_PCT, min(100.0, pct)) if pct > 0 else 0
    return html.Div(html.Div(className=f"bar-fill {extra}".strip(), style={"width": f"{width:.1f}%"}), className="bar")


def funnel(snapshot: Snapshot, lang: Language) -> list[html.Div]:
    """Stages with count, bar (share of visits), step conversion against benchmark and last year."""
    stages = snapshot.funnel
    top = max((s.count for s in stages), default=0) or 1
    rows = []
    for s in stages:
        compare = []
        if s.benchmark is not None:
            compare.append(f"{i18n.text('benchmark', lang)} {percent(s.benchmark, 0)}")
        if s.baseline_step_rate is not None:
            compare.append(f"{i18n.text('baseline', lang)} {percent(s.baseline_step_rate)}")
        below = s.below_baseline
        rows.append(
            html.Div(
                [
                    html.Div(i18n.stage(s.stage, lang), className="stage-name"),
                    _bar(s.count / top * 100, "bad" if below else ""),
                    html.Div(compact(s.count, lang), className="stage-count"),
                    html.Div(percent(s.step_rate) if s.step_rate is not None else "", className="stage-rate"),
                    html.Div(" · ".join(compare), className="stage-compare"),
                ],
                className="funnel-row below" if below else "funnel-row",
                **_data(stage=s.stage, count=str(s.count)),
            )
        )
    return rows


def _stock_level(row: SkuRow) -> str:
    if row.oversold:
        return "oversold"
    if row.sold_out:
        return "sold-out"
    if row.below_safety:
        return "critical"
    if row.below_warning:
        return "low"
    return "ok"


def _sku_name(row: SkuRow, lang: Language) -> str:
    return (row.name_zh if lang == "zh" else None) or row.name or row.sku


URGENCY = ("oversold", "sold-out", "critical", "low", "ok")
"""Stock levels, most urgent first: the order the inventory panel lists SKUs in."""


def by_urgency(rows: list[SkuRow]) -> list[SkuRow]:
    """Oversold, sold out, below safety stock, below the warning level, then the rest; soonest to sell out first."""
    return sorted(
        rows,
        key=lambda r: (
            URGENCY.index(_stock_level(r)),
            r.sell_out_eta_min if r.sell_out_eta_min is not None else float("inf"),
            -(r.sell_rate_per_min or 0),
        ),
    )


def _eta(row: SkuRow, lang: Language) -> str:
    if row.oversold:
        return f"{i18n.text('oversold', lang)} {row.on_hand}"
    if row.sold_out:
        return i18n.text("sold_out", lang)
    return duration(row.sell_out_eta_min, lang)


def inventory(snapshot: Snapshot, lang: Language) -> list[html.Div]:
    """The INVENTORY_ROWS most urgent SKUs with stock bars (oversold and sold out first, highlighted, then the
    hot SKUs soonest to sell out), and how many more there are."""
    rows = by_urgency([r for r in snapshot.skus if r.on_hand is not None])
    if not rows:
        return [html.Div(i18n.text("no_data", lang), className="empty")]
    out = [
        html.Div(
            [html.Div(i18n.text(k, lang), className=f"col-{k}") for k in ("sku", "on_hand", "eta")],
            className="sku-row sku-head",
        )
    ]
    shown = rows[:INVENTORY_ROWS]
    stock_texts = column([r.on_hand for r in shown], lang)
    for r, stock_text in zip(shown, stock_texts, strict=True):
        on_hand = r.on_hand or 0
        scale = (max(on_hand, 0) + (r.units_sold or 0)) or 1
        level = _stock_level(r)
        markers = [
            html.Div(className=f"marker {name}", style={"left": f"{min(100.0, level_at / scale * 100):.1f}%"})
            for name, level_at in (("safety_stock", r.safety_stock), ("warning_level", r.warning_level))
            if level_at
        ]
        out.append(
            html.Div(
                [
                    html.Div(_sku_name(r, lang), className="col-sku"),
                    html.Div(
                        [
                            html.Div([_bar(on_hand / scale * 100, level), *markers], className="stock-bar"),
                            html.Span(stock_text),
                        ],
                        className="col-on_hand stock",
                    ),
                    html.Div(_eta(r, lang), className="col-eta"),
                ],
                className=f"sku-row {level}",
                **_data(sku=r.sku, on_hand=str(r.on_hand)),
            )
        )
    if len(rows) > INVENTORY_ROWS:
        more = i18n.text("more_skus", lang, count=str(len(rows) - INVENTORY_ROWS))
        out.append(html.Div(more, className="more"))
    return out


def _has_data(row: ChannelRow) -> bool:
    """Whether a channel has anything this panel shows (paid GMV, conversion): events of other kinds (stock counts,
    metrics, ad spend) come without a channel or with no sale and would otherwise leave an "unknown ¥0 —" row."""
    return any((row.gmv_paid, row.orders_paid, row.visits, row.uv))


def channels(snapshot: Snapshot, lang: Language) -> list[html.Div]:
    """Paid GMV per channel with data (a bar for its share, the amount) and its conversion rate, largest first."""
    rows = [c for c in snapshot.channels if _has_data(c)]
    total = sum(c.gmv_paid for c in rows) or 1
    currency = snapshot.currency
    if not rows:
        return [html.Div(i18n.text("no_data", lang), className="empty")]
    return [
        html.Div(
            [
                html.Div(i18n.channel(c.channel, lang), className="channel-name"),
                _bar(c.gmv_paid / total * 100),
                html.Div(money(c.gmv_paid, currency, lang), className="channel-gmv"),
                html.Div(percent(c.conversion_rate, 2), className="channel-cr"),
            ],
            className="channel-row",
            **_data(channel=c.channel),
        )
        for c in rows[:CHANNEL_ROWS]
    ]


def _summary(alert: LiveAlert, lang: Language) -> str:
    return (alert.summary_zh if lang == "zh" else alert.summary_en) or alert.rule


def _marked(alert: LiveAlert, lang: Language, badge: str, fired_value: bool = True) -> list[Any]:
    """The summary (of the alert's latest values), after a 演练 / REHEARSAL badge when the alert is a rehearsal's
    (on a replayed night's clock), and (``fired_value``) the value it fired at when it has moved since."""
    parts: list[Any] = [_summary(alert, lang)]
    if alert.clock == "replay":
        parts = [html.Span(i18n.text("rehearsal", lang), className=badge), " ", *parts]
    fired, now = alert.fired_reading, alert.reading
    if fired_value and fired is not None and fired != now:
        value = fired.zh if lang == "zh" else fired.en
        parts.append(html.Span(f" · {i18n.text('at_fire', lang, value=value)}", className="alert-fired"))
    return parts


def _acknowledgment(alert: LiveAlert, lang: Language) -> str:
    """Who acknowledged the alert and when (on the wall clock, read in the campaign's zone), or that nobody has."""
    ack = alert.acknowledged
    if ack is None:
        return i18n.text("unacknowledged", lang)
    at = datetime.fromtimestamp(ack.at, ZoneInfo(alert.timezone)).strftime("%H:%M:%S") if ack.at is not None else ""
    return i18n.text("acknowledged_by", lang, who=ack.by, at=at).strip()


def ordered(alerts: list[LiveAlert]) -> list[LiveAlert]:
    """Most severe first, then the newest."""
    return sorted(alerts, key=lambda a: (-rank(a.severity), -(a.fired_at or 0)))


def alert_feed(alerts: list[LiveAlert], now: float, wall: float, lang: Language) -> list[html.Div]:
    """Active alerts with severity colour, icon, summary and age. A rehearsal's alert is marked and aged on the
    night's clock (``now``, the campaign's), a live one on the wall clock (``wall``)."""
    if not alerts:
        return [html.Div(i18n.text("no_alerts", lang), className="empty ok")]
    return [
        html.Div(
            [
                html.Span(ICONS.get(a.severity, "•"), className="alert-icon"),
                html.Span(i18n.severity(a.severity, lang), className="alert-severity"),
                html.Span(_marked(a, lang, "alert-rehearsal"), className="alert-summary"),
                html.Span(
                    _acknowledgment(a, lang),
                    className="alert-ack" if a.acknowledged else "alert-ack unacked",
                    **_data(acknowledged="true" if a.acknowledged else "false"),
                ),
                html.Span(age(_at(a, now, wall) - (a.fired_at or _at(a, now, wall)), lang), className="alert-age"),
            ],
            className=f"alert {a.severity}",
            **_data(alert=a.id),
        )
        for a in ordered(alerts)[:ALERT_ROWS]
    ] + _more_alerts(len(alerts), lang)


def _more_alerts(count: int, lang: Language) -> list[html.Div]:
    if count <= ALERT_ROWS:
        return []
    return [html.Div(i18n.text("more_alerts", lang, count=str(count - ALERT_ROWS)), className="more")]


def _at(alert: LiveAlert, now: float, wall: float) -> float:
    """The moment an alert's age is counted to: its campaign's clock for a rehearsal's alert, else the wall clock."""
    return now if alert.clock == "replay" else wall


def _banner_state(alert: LiveAlert, lang: Language) -> str | None:
    """What the banner says of an emergency beside its summary: who acknowledged it and when, or that it resolved
    but nobody has acknowledged it yet; nothing for a firing, unacknowledged one (the hint says what to do)."""
    if alert.acknowledged is not None:
        return _acknowledgment(alert, lang)
    return i18n.text("resolved_unacknowledged", lang) if alert.status == "resolved" else None


def by_importance(alerts: list[LiveAlert]) -> list[LiveAlert]:
    """The banner's order: firing before resolved, unacknowledged before acknowledged, then the newest."""
    return sorted(alerts, key=lambda a: (a.status != "firing", a.acknowledged is not None, -(a.fired_at or 0)))


def banner(alerts: list[LiveAlert], wall: float, lang: Language) -> tuple[list[html.Div], str]:
    """The emergency banner: the ``BANNER_ITEMS`` most important emergencies that are news for the room
    (``views.is_news``: firing or resolved, until acknowledged, then with who acknowledged it and when for
    ``ACKNOWLEDGED_NEWS_S``; ``by_importance``), each by its summary (the alert panel has the value it fired at), then
    one line with how many more and what to do; hidden when there is none. ``wall`` is the wall clock's now
    (acknowledgments are on it)."""
    urgent = by_importance([a for a in alerts if is_news(a, wall)])
    if not urgent:
        return [], "banner hidden"
    items: list[html.Div] = []
    for a in urgent[:BANNER_ITEMS]:
        state = _banner_state(a, lang)
        items.append(
            html.Div(
                [
                    html.Span(ICONS[Severity.EMERGENCY], className="banner-icon"),
                    html.Span(_marked(a, lang, "banner-rehearsal", fired_value=False), className="banner-text"),
                    html.Span(state, className="banner-state") if state else None,
                ],
                className="banner-item acked" if a.acknowledged else "banner-item",
                **_data(alert=a.id, status=a.status, acknowledged="true" if a.acknowledged else "false"),
            )
        )
    foot = []
    if len(urgent) > BANNER_ITEMS:
        more = i18n.text("more_emergencies", lang, count=str(len(urgent) - BANNER_ITEMS))
        foot.append(html.Span(more, className="banner-more", **_data(more=str(len(urgent) - BANNER_ITEMS))))
    if any(a.acknowledged is None for a in urgent):
        foot.append(html.Span(i18n.text("banner_hint", lang), className="banner-hint"))
    if foot:
        items.append(html.Div(foot, className="banner-foot"))
    # The container's class stays "banner" while it shows anything: changing it in the same push as its children
    # left the children as they were (Dash 4.4); an acknowledged item says so by its own class.
    return items, "banner"
