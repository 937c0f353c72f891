"""The wall's words in zh-CN and en. Chinese is the default: the war-room reads Chinese first."""

from __future__ import annotations

from typing import Literal

from alerts.evaluation.severity import MOST_SEVERE_FIRST

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")
DEFAULT_LANGUAGE: Language = "zh"

TEXT: dict[str, tuple[str, str]] = {
    "title": ("作战大屏", "War-Room Wall"),
    "live": ("实时", "LIVE"),
    "stale": ("数据中断 · 重连中", "STALE · reconnecting"),
    "phase": ("阶段", "Phase"),
    "next_phase": ("距{phase}", "{phase} in"),
    "no_phase": ("未开始", "not running"),
    "ended": ("已结束", "ended"),
    "rehearsal": ("演练", "REHEARSAL"),
    "gmv_paid": ("支付金额", "Paid GMV"),
    "of_target": ("目标完成", "of target"),
    "projected": ("预计全程", "projected"),
    "orders_paid": ("支付订单", "Paid orders"),
    "payment_rate": ("支付率", "Paid rate"),
    "aov": ("客单价", "AOV"),
    "uv": ("访客数", "UV"),
    "conversion_rate": ("转化率", "Conversion"),
    "uv_value": ("UV价值", "UV value"),
    "new_customers": ("新客数", "New customers"),
    "vs_baseline": ("较去年同期", "vs last year"),
    "gmv_curve": ("累计支付金额", "Cumulative paid GMV"),
    "actual": ("今年", "This year"),
    "target_pace": ("目标进度", "Target pace"),
    "baseline": ("去年同期", "Last year"),
    "per_minute": ("每分钟支付金额", "Paid GMV per minute"),
    "baseline_minute": ("去年同一分钟", "Last year, same minute"),
    "last_minutes": ("最近{minutes}个整分钟", "last {minutes} complete minutes"),
    "since": ("自 {start} 起", "since {start}"),
    "since_burst": ("自爆发期（{burst}）前 {lead} 分钟起", "from {lead} min before the burst, {burst}"),
    "target": ("目标完成", "Of target"),
    "target_of": ("目标 {amount}", "target {amount}"),
    "more_skus": ("另有 {count} 款", "+{count} more"),
    "more_alerts": ("另有 {count} 条预警", "+{count} more alerts"),
    "funnel": ("转化漏斗", "Funnel"),
    "step_rate": ("环节转化", "step"),
    "benchmark": ("基准", "benchmark"),
    "inventory": ("爆款库存", "Hot SKU stock"),
    "sku": ("商品", "SKU"),
    "on_hand": ("库存", "On hand"),
    "eta": ("预计售罄", "Sell-out in"),
    "sold_out": ("已售罄", "Sold out"),
    "oversold": ("超卖", "Oversold"),
    "channels": ("渠道分布", "Channels"),
    "share": ("占比", "share"),
    "alerts": ("预警", "Alerts"),
    "no_alerts": ("暂无预警", "No active alerts"),
    "acknowledged_by": ("已确认：{who} {at}", "acknowledged by {who} at {at}"),
    "unacknowledged": ("未确认", "unacknowledged"),
    "resolved_unacknowledged": ("已恢复，待确认", "resolved, not yet acknowledged"),
    # The value an alert fired at, beside its latest; the on-call page (app/api/static/oncall.js) words it alike.
    "at_fire": ("触发时 {value}", "when fired: {value}"),
    "banner_hint": ("请立即处理并确认", "act now and acknowledge"),
    "more_emergencies": ("另有 {count} 条", "+{count} more"),
    "no_data": ("暂无数据", "no data yet"),
    "key_limit": (
        "{kind}超过{limit}个上限：{events}条事件未单独统计",
        "{kind} past the {limit} limit: {events} events not tracked apart",
    ),
    "unconverted": (
        "{currency}无汇率：{amount}（{events}条）未计入GMV",
        "no {currency} rate: {amount} ({events} events) not in GMV",
    ),
}

KEY_KINDS: dict[str, tuple[str, str]] = {
    "channel": ("渠道", "Channels"),
    "sku": ("商品", "SKUs"),
    "category": ("品类", "Categories"),
    "metric": ("指标序列", "Metric series"),
    "stock_sku": ("库存商品", "Stock SKUs"),
    "warehouse": ("仓库", "Warehouses"),
    "currency": ("币种", "Currencies"),
}

PHASES: dict[str, tuple[str, str]] = {
    "preheat": ("预热期", "Pre-heat"),
    "burst": ("爆发期", "Burst"),
    "wrapup": ("收尾期", "Wrap-up"),
}

STAGES: dict[str, tuple[str, str]] = {
    "visit": ("访问", "Visit"),
    "product_view": ("浏览商品", "Product view"),
    "add_to_cart": ("加购", "Add to cart"),
    "order": ("下单", "Order"),
    "paid": ("支付", "Paid"),
}

SEVERITIES: dict[str, tuple[str, str]] = {severity.value: (severity.zh, severity.en) for severity in MOST_SEVERE_FIRST}

CHANNELS: dict[str, tuple[str, str]] = {
    "tmall": ("天猫", "Tmall"),
    "taobao": ("淘宝", "Taobao"),
    "jd": ("京东", "JD"),
    "douyin": ("抖音", "Douyin"),
    "kuaishou": ("快手", "Kuaishou"),
    "pinduoduo": ("拼多多", "Pinduoduo"),
    "app": ("App", "App"),
    "web": ("官网", "Web"),
    "miniprogram": ("小程序", "Mini program"),
    "(none)": ("未知", "unknown"),
    "(other)": ("其他", "other"),
}


def language(value: str | None, default: Language = DEFAULT_LANGUAGE) -> Language:
    """The language a URL parameter asks for (zh, zh-CN, en, en-US…), else ``default``."""
    prefix = (value or "").strip().lower()[:2]
    return prefix if prefix in LANGUAGES else default


def _pick(pair: tuple[str, str], lang: Language) -> str:
    return pair[0] if lang == "zh" else pair[1]


def text(key: str, lang: Language, **fields: str) -> str:
    return _pick(TEXT[key], lang).format(**fields)


def phase(name: str | None, lang: Language) -> str:
    return _pick(PHASES[name], lang) if name in PHASES else text("no_phase", lang)


def stage(name: str, lang: Language) -> str:
    return _pick(STAGES[name], lang) if name in STAGES else name


def severity(name: str, lang: Language) -> str:
    return _pick(SEVERITIES[name], lang) if name in SEVERITIES else name


def key_kind(name: str, lang: Language) -> str:
    return _pick(KEY_KINDS[name], lang) if name in KEY_KINDS else name


def channel(name: str, lang: Language) -> str:
    return _pick(CHANNELS[name], lang) if name in CHANNELS else name
