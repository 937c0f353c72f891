"""What people read: an alert's summary and first step in zh-CN and en, and a link to its panel."""

from __future__ import annotations

import math
import string
from typing import Any

from alerts.rules import SEVERITY_ZH, AnyRule

SEVERITY_EN = {"reminder": "Reminder", "warning": "Warning", "emergency": "Emergency"}


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


def render(template: str, labels: dict[str, str], values: dict[str, Any], severity: str, language: str) -> str:
    fields = _Fields({k: _number(v) for k, v in values.items()})
    fields.update(labels)
    fields["severity"] = SEVERITY_ZH[severity] if language == "zh" else SEVERITY_EN[severity]
    if isinstance(values.get("value"), float) and values.get("reference") is not None:
        fields["change_pct"] = f"{values['value'] * 100:+.0f}%"
    return string.Formatter().vformat(template, (), fields)


def describe(rule: AnyRule, labels: dict[str, str], values: dict[str, Any], severity: str) -> dict[str, str]:
    """Summary and runbook in both languages, and the wall panel to open."""
    campaign = labels.get("campaign", "")
    return {
        "summary_en": render(rule.summary.en, labels, values, severity, "en"),
        "summary_zh": render(rule.summary.zh, labels, values, severity, "zh"),
        "runbook_en": rule.runbook.en,
        "runbook_zh": rule.runbook.zh,
        "link": f"/wall/{campaign}#{rule.panel}",
    }
