"""What people read: an alert's summary and first step in zh-CN and en, and a link to its panel."""

from __future__ import annotations

import math
import string
from typing import Any

import msgspec

from alerts.evaluation.rules import AnyRule
from alerts.evaluation.severity import Severity


class AlertText(msgspec.Struct, frozen=True):
    """What a message says about one alert: summary and first step in both languages, the wall panel to open,
    and (as stored, for group messages) its values and severity. Empty for an alert the store no longer has."""

    summary_en: str = ""
    summary_zh: str = ""
    runbook_en: str = ""
    runbook_zh: str = ""
    link: str = ""
    values: dict[str, Any] = {}
    severity: Severity | None = None
    rehearsal: bool = False
    """The alert is a rehearsal's (a replayed night's): its message says so, never to be taken for a live one."""


class _Fields(dict[str, Any]):
    """Missing placeholders render as themselves instead of failing the whole message."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _number(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if abs(value) < 10 and value != int(value):
            return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
        return f"{value:,.0f}"
    return value


def render(template: str, labels: dict[str, str], values: dict[str, Any], severity: Severity, language: str) -> str:
    fields = _Fields({k: _number(v) for k, v in values.items()})
    fields.update(labels)
    fields["severity"] = severity.zh if language == "zh" else severity.en
    if isinstance(values.get("value"), float) and values.get("reference") is not None:
        fields["change_pct"] = f"{values['value'] * 100:+.0f}%"
    return string.Formatter().vformat(template, (), fields)


def describe(rule: AnyRule, labels: dict[str, str], values: dict[str, Any], severity: Severity) -> AlertText:
    """Summary and runbook in both languages, and the wall panel to open."""
    campaign = labels.get("campaign", "")
    return AlertText(
        summary_en=render(rule.summary.en, labels, values, severity, "en"),
        summary_zh=render(rule.summary.zh, labels, values, severity, "zh"),
        runbook_en=rule.runbook.en,
        runbook_zh=rule.runbook.zh,
        link=f"/wall/{campaign}#{rule.panel}",
    )


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


def _values_text(values: dict[str, Any]) -> str:
    shown = [
        f"{k}={_number(v)}" for k, v in values.items() if k in ("value", "threshold", "expected", "lower", "upper")
    ]
    return ", ".join(shown)


def _pick(zh: str, en: str, language: str) -> str:
    """The text in the contact point's language (both, Chinese first, for any other)."""
    return zh if language == "zh" else en if language == "en" else f"{zh} / {en}"


def _alert_lines(text: AlertText, language: str, public_url: str, mark: str) -> list[str]:
    summary = _pick(text.summary_zh, text.summary_en, language)
    if text.rehearsal:
        summary = f"[{_pick(*REHEARSAL, language)}] {summary}"
    lines = [f"- {mark} {summary}"]
    values = _values_text(text.values)
    if values:
        lines.append(f"  {values}")
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
