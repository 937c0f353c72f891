"""What people read: an alert's summary and first step in zh-CN and en, and a link to its panel."""

from __future__ import annotations

import string
from typing import Any, TypeGuard

import msgspec

from alerts.evaluation.evaluate import OPS
from alerts.evaluation.rules import SIGNAL_GROUPS, AnyRule, DynamicRule, Signal, StaticRule, metric_unit
from alerts.evaluation.severity import Severity
from alerts.evaluation.views import Reading
from app.core.quantities import MISSING, Unit, figure


class AlertText(msgspec.Struct, frozen=True):
    """What a message says about one alert: summary and first step in both languages, the wall panel to open,
    and (as stored, for group messages) its severity. Empty for an alert the store no longer has. The summary
    carries the alert's numbers, formatted from their units: no raw value is listed beside it."""

    summary_en: str = ""
    summary_zh: str = ""
    runbook_en: str = ""
    runbook_zh: str = ""
    link: str = ""
    severity: Severity | None = None
    rehearsal: bool = False
    """The alert is a rehearsal's (a replayed night's): its message says so, never to be taken for a live one."""


class Terms(msgspec.Struct, frozen=True):
    """What a campaign's definition tells its alert texts: the currency amounts are in, and each SKU's product
    name (the inventory panel's) in English and Chinese."""

    currency: str | None = None
    products: dict[str, tuple[str, str | None]] = {}
    """SKU id → (name, Chinese name or None)."""


NO_TERMS = Terms()
PRODUCT = "product"
"""The placeholder naming a SKU label's product as the room knows it, name first then id: "极光X1手机 (SKU-1001)"
(the id alone when the catalogue has no name for it)."""


UNKNOWN = ("未知", "unknown")
"""What a placeholder reads as when the alert has no value for it at all: a word, never the placeholder's braces."""
RESOLVED = ("已恢复", "Resolved")
"""A resolved alert's state, where its text names one (``{severity}``, the default resolved wording's opening)."""
INCONCLUSIVE = (
    "（读数仍过阈值，但量太少或变化不显著，不再告警）",
    " (still past it, but on too few events or no longer significant)",
)
"""After a recovery whose last reading is still past the threshold it fired at: why it ended anyway."""


class _Fields(dict[str, Any]):
    """A placeholder without a value reads as ``unknown`` (a word in the message's language) instead of failing the
    whole message or showing its braces to a person."""

    def __init__(self, fields: dict[str, Any], unknown: str) -> None:
        super().__init__(fields)
        self.unknown = unknown

    def __missing__(self, key: str) -> str:
        return self.unknown


def _signal_key(signal: Signal) -> str:
    """The key of a correlation or guard signal's value among an alert's values (``Evaluator._correlation``)."""
    change = "_change" if signal.change else ""
    lag = f"@-{signal.lag}" if signal.lag != "0s" else ""
    return f"{signal.metric}{change}{lag}"


def value_units(rule: AnyRule) -> dict[str, Unit]:
    """The unit of each of a rule's values, from the unit its metric declares (``rules.metric_unit``): a static
    rule's value and threshold (a change when the rule compares with a reference), a dynamic rule's value and
    expected band, each signal's value."""
    units: dict[str, Unit] = {"change_pct": "change", "score": "number"}
    if isinstance(rule, (StaticRule, DynamicRule)):
        unit = metric_unit(rule.metric)
        units.update(dict.fromkeys(("raw", "reference", "expected", "lower", "upper", "baseline"), unit))
        compared: Unit = "change" if isinstance(rule, StaticRule) and rule.change is not None else unit
        units.update(value=compared, threshold=compared)
    for group in SIGNAL_GROUPS:
        for signal in getattr(rule, group, []):
            units[_signal_key(signal)] = "change" if signal.change else metric_unit(signal.metric)
    return units


def _plain(value: Any) -> Any:
    """A value without a declared unit: numbers as ``figure`` reads a plain number, no reading as —."""
    if value is None:
        return MISSING
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return figure(value, "number", "en")
    return value


def product(sku: str, terms: Terms, language: str) -> str:
    """A SKU as the room knows it: its product name in ``language`` (English for any other), then its id."""
    names = terms.products.get(sku)
    if names is None:
        return sku
    name = (names[1] if language == "zh" else None) or names[0]
    return f"{name} ({sku})" if name and name != sku else sku


def _number(value: Any) -> TypeGuard[float]:
    """Whether ``value`` is a number read (a bool is not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def change(values: dict[str, Any]) -> float | None:
    """How far a static rule's reading is from its reference (last year's same minutes, or the previous ones): its
    ``value`` when that is the change it compared, else worked out from ``raw`` and ``reference``, since a change
    too small to be significant (the evaluation's ``value`` is then None, as when a drop recovers) is still one a
    message can say; None without a reference."""
    value, raw, reference = values.get("value"), values.get("raw"), values.get("reference")
    if not _number(reference):
        return None
    if _number(value):
        return float(value)
    return raw / reference - 1 if _number(raw) and reference else None


def render(
    template: str,
    labels: dict[str, str],
    values: dict[str, Any],
    severity: Severity,
    language: str,
    units: dict[str, Unit] | None = None,
    terms: Terms = NO_TERMS,
    resolved: bool = False,
) -> str:
    """``template`` with its placeholders filled: each value in its unit and the message's language (a ratio as a
    percentage, money in the campaign's currency with 万/亿 or K/M/B), labels as they are, ``{product}`` naming the
    alert's SKU, ``{severity}`` in the language (or, ``resolved``, "已恢复" / "Resolved"), ``{change_pct}`` a static
    reading's change from its reference (— without one). A placeholder the alert has no value for reads "未知" /
    "unknown"."""
    units = units or {}
    zh = language == "zh"
    fields = _Fields(
        {
            key: figure(value, units[key], language, terms.currency)
            if key in units and (value is None or isinstance(value, (int, float)))
            else _plain(value)
            for key, value in values.items()
        },
        UNKNOWN[0] if zh else UNKNOWN[1],
    )
    fields.update(labels)
    fields["severity"] = (RESOLVED[0] if zh else RESOLVED[1]) if resolved else severity.zh if zh else severity.en
    if "sku" in labels:
        fields[PRODUCT] = product(labels["sku"], terms, language)
    if "reference" in values:
        fields["change_pct"] = figure(change(values), "change", language)
    return string.Formatter().vformat(template, (), fields)


def resolved_template(rule: AnyRule, language: str) -> str:
    """How a rule's alert reads once resolved: its ``resolved`` text; without one, its summary after "已恢复：" /
    "Resolved: ", or as it is when it names its ``{severity}`` (which then reads "已恢复" / "Resolved")."""
    zh = language == "zh"
    if rule.resolved is not None:
        return rule.resolved.zh if zh else rule.resolved.en
    summary = rule.summary.zh if zh else rule.summary.en
    if "{severity}" in summary:
        return summary
    return f"{RESOLVED[0]}：{summary}" if zh else f"{RESOLVED[1]}: {summary}"


def headline(rule: AnyRule) -> str | None:
    """Which of a rule's values is its alert's headline: a static or dynamic rule's ``value``; for a correlation, its
    first signal that is a ratio or a change (the payment rate of a payment outage, the top buyers' share of
    brushing), else its first signal."""
    if isinstance(rule, (StaticRule, DynamicRule)):
        return "value"
    signals = [signal for group in ("all", "any") for signal in getattr(rule, group, [])]
    telling = [s for s in signals if s.change or metric_unit(s.metric) == "ratio"]
    chosen = (telling or signals or [None])[0]
    return _signal_key(chosen) if chosen is not None else None


def reading(rule: AnyRule, values: dict[str, Any], terms: Terms = NO_TERMS) -> Reading | None:
    """The headline value of ``values`` in its unit, in both languages; None without one."""
    key = headline(rule)
    value = values.get(key) if key else None
    if key is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    unit = value_units(rule).get(key, "number")
    return Reading(en=figure(value, unit, "en", terms.currency), zh=figure(value, unit, "zh", terms.currency))


def describe(
    rule: AnyRule,
    labels: dict[str, str],
    values: dict[str, Any],
    severity: Severity,
    terms: Terms = NO_TERMS,
    resolved: bool = False,
    fired: dict[str, Any] | None = None,
) -> AlertText:
    """Summary and runbook in both languages, and the wall panel to open. A ``resolved`` alert reads as a recovery
    (``resolved_template``): its last ``values`` with the threshold it ``fired`` at (the values when it fired), not
    the one it recovered past."""
    campaign = labels.get("campaign", "")
    units = value_units(rule)
    if resolved and fired and fired.get("threshold") is not None:
        values = {**values, "threshold": fired["threshold"]}
    en = resolved_template(rule, "en") if resolved else rule.summary.en
    zh = resolved_template(rule, "zh") if resolved else rule.summary.zh
    if resolved and isinstance(rule, StaticRule) and _still_past(rule, values, severity):
        zh, en = zh + INCONCLUSIVE[0], en + INCONCLUSIVE[1]
    return AlertText(
        summary_en=render(en, labels, values, severity, "en", units, terms, resolved),
        summary_zh=render(zh, labels, values, severity, "zh", units, terms, resolved),
        runbook_en=rule.runbook.en,
        runbook_zh=rule.runbook.zh,
        link=f"/wall/{campaign}#{rule.panel}",
    )


def _still_past(rule: StaticRule, values: dict[str, Any], severity: Severity) -> bool:
    """Whether a resolved alert's last reading (its change, significant or not) still meets the condition of the tier
    it held: it ended because its guard stopped holding or the change stopped being significant, not because the
    metric came back."""
    condition = getattr(rule.conditions, severity.value)
    current, threshold = values.get("value"), values.get("threshold")
    if current is None and rule.change is not None:
        raw, reference = values.get("raw"), values.get("reference")
        current = raw / reference - 1 if _number(raw) and _number(reference) and reference != 0 else None
    return condition is not None and _number(current) and _number(threshold) and OPS[condition.op](current, threshold)


KIND_TITLE = {
    "firing": ("告警", "Firing"),
    "escalation": ("升级", "Escalated"),
    "repeat": ("仍未处理", "Still firing"),
    "resolved": ("已恢复", "Resolved"),
}
SEVERITY_ICON: dict[Severity, str] = {Severity.EMERGENCY: "🔴", Severity.WARNING: "🟠", Severity.REMINDER: "🔵"}
REHEARSAL = ("演练", "REHEARSAL")
MAX_LISTED = 30
"""A group message lists this many alerts; the rest are counted (the on-call page has them all)."""


def _pick(zh: str, en: str, language: str) -> str:
    """The text in the contact point's language (both, Chinese first, for any other)."""
    return zh if language == "zh" else en if language == "en" else f"{zh} / {en}"


def _alert_lines(text: AlertText, language: str, public_url: str, mark: str) -> list[str]:
    summary = _pick(text.summary_zh, text.summary_en, language)
    if text.rehearsal:
        summary = f"[{_pick(*REHEARSAL, language)}] {summary}"
    lines = [f"- {mark} {summary}"]
    runbook_zh, runbook_en = text.runbook_zh, text.runbook_en
    if runbook_zh or runbook_en:
        runbook = runbook_zh if language == "zh" else runbook_en if language == "en" else f"{runbook_zh} / {runbook_en}"
        lines.append(
            f"  {'处置' if language == 'zh' else 'First step' if language == 'en' else '处置 / First step'}: {runbook}"
        )
    if text.link:
        lines.append(f"  {public_url}{text.link}")
    return lines


def compose_group(
    kind: str,
    severity: Severity,
    group_key: str,
    firing: list[tuple[AlertText, bool, bool]],
    resolved: list[AlertText],
    language: str,
    public_url: str,
) -> tuple[str, str]:
    """Title and Markdown body of one message about an alert group; a rehearsal's alerts, and the title of a
    group holding any, are marked 演练 / REHEARSAL.

    ``firing`` holds (alert text, is new, is acknowledged), as the alert store keeps the text.
    """
    kind_zh, kind_en = KIND_TITLE[kind]
    severity_zh, severity_en = severity.zh, severity.en
    if language == "zh":
        label = f"{kind_zh}·{severity_zh}"
    elif language == "en":
        label = f"{kind_en} · {severity_en}"
    else:
        label = f"{kind_zh}·{severity_zh} {kind_en} · {severity_en}"
    counts = f"{len(firing)} firing" if language != "zh" else f"{len(firing)} 条告警"
    if resolved:
        counts += f", {len(resolved)} resolved" if language != "zh" else f"，{len(resolved)} 条恢复"
    title = f"[{label}] {group_key} ({counts})"
    if any(text.rehearsal for text in (*(t for t, _, _ in firing), *resolved)):
        title = f"[{_pick(*REHEARSAL, language)}] {title}"
    lines: list[str] = []
    for text, new, acked in firing[:MAX_LISTED]:
        mark = SEVERITY_ICON.get(text.severity or severity, "•") + (" 🆕" if new else "") + (" ✔︎ack" if acked else "")
        lines += _alert_lines(text, language, public_url, mark)
    for text in resolved[: max(0, MAX_LISTED - len(firing))]:
        lines += _alert_lines(text, language, public_url, "✅")
    hidden = len(firing) + len(resolved) - MAX_LISTED
    if hidden > 0:
        lines.append(f"… +{hidden}")
    lines.append("")
    page = "值班页" if language == "zh" else "On-call page" if language == "en" else "值班页 / On-call page"
    lines.append(f"{page}: {public_url}/oncall")
    return title, "\n".join(lines)
