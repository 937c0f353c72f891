"""Alert rules: what to watch, when it is bad, how bad, and what to do first.

Rules live in YAML files (``rules/*.yaml``) and are validated here with
line-precise errors (``rules/pack.yaml:12:9: rules[3].conditions.warning.op: ...``).
Three kinds:

- ``static``: a metric (optionally its change against the previous period or
  the baseline campaign) compared with a fixed value or a catalog attribute
  (``safety_stock``), with one condition per severity tier;
- ``dynamic``: a metric compared with an expected band (last year's baseline
  aligned by phase, and/or an online forecast); tiers are score thresholds;
- ``correlation``: several conditions that must hold together (``all``) or
  alone (``any``), each optionally lagged, joined on the rule's label.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from alerts.evaluation.inhibit import InhibitRule
from alerts.evaluation.metricview import METRIC_NAMES, known_metric
from app.core import configfile

SEVERITIES: tuple[str, ...] = ("reminder", "warning", "emergency")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
SEVERITY_ZH = {"reminder": "提醒", "warning": "警告", "emergency": "紧急"}

DEFAULT_FOR = "0s"
DEFAULT_RECOVER_MARGIN = 0.05
"""A firing condition resolves only when the value is this fraction beyond the threshold (hysteresis)."""
DEFAULT_SCORE_TIERS: dict[Severity, float] = {"reminder": 0.5, "warning": 0.75, "emergency": 0.95}
DEFAULT_MIN_HISTORY = "30m"
DEFAULT_SENSITIVITY = 0.5
CATALOG_ATTRIBUTES = frozenset({"safety_stock", "warning_level"})

Severity = Literal["reminder", "warning", "emergency"]
Op = Literal["<", "<=", ">", ">=", "==", "!="]
By = Literal["channel", "sku", "category"]
Duration = Annotated[str, msgspec.Meta(pattern=r"^\d+(\.\d+)?(ms|s|m|h)$", description="e.g. 30s, 5m, 1h")]
Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@functools.lru_cache(maxsize=1024)
def seconds(duration: str) -> float:
    """``"5m"`` → 300.0."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    if match is None:
        raise ValueError(f"not a duration: {duration!r} (use e.g. 30s, 5m, 1h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


class Text(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A message in both languages; ``{placeholders}`` are filled from the alert (value, threshold, labels…)."""

    en: str
    zh: str


class Change(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Compare the metric with a reference instead of using it raw: value becomes ``current / reference - 1``."""

    vs: Literal["previous", "baseline"] = "previous"
    over: Duration = "10m"
    """For ``previous``: the period before the current window whose average is the reference."""
    min_reference: float = 0.0
    """Below this reference the change is undefined (no alert on 1 → 3 orders)."""
    min_z: float = 0.0
    """For counts: the change counts only when ``|current - reference| / sqrt(current + reference)`` reaches
    this many standard deviations (both are Poisson counts), so quiet hours need a bigger swing than the peak."""
    scaled: bool = False
    """For ``baseline``: multiply last year's value by this year's growth (pre-heat total ÷ last year's), so a
    campaign running 25% above last year is compared with last year + 25%."""


class Condition(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``value op threshold``; the threshold is a number or a SKU catalog attribute (``safety_stock``)."""

    op: Op
    value: float | str
    recover: float | str | None = None
    """The threshold that ends the alert once firing; default: ``value`` moved by the rule's ``recover_margin``."""

    def __post_init__(self) -> None:
        for threshold in (self.value, self.recover):
            if isinstance(threshold, str) and threshold not in CATALOG_ATTRIBUTES:
                raise ValueError(
                    f"threshold {threshold!r} must be a number or one of {', '.join(sorted(CATALOG_ATTRIBUTES))}"
                )


class Conditions(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    reminder: Condition | None = None
    warning: Condition | None = None
    emergency: Condition | None = None

    def tiers(self) -> list[tuple[str, Condition]]:
        """Present tiers, most severe first (the first that holds decides the severity)."""
        return [(s, c) for s in reversed(SEVERITIES) if (c := getattr(self, s)) is not None]


_series_columns: contextvars.ContextVar[bool] = contextvars.ContextVar("series_columns", default=False)
"""True while parsing rules for a backtest, where metrics name CSV columns instead of engine metrics."""


def _check_metric(name: str) -> None:
    if _series_columns.get():
        if not name:
            raise ValueError("metric must name a column of the series")
        return
    if not known_metric(name):
        raise ValueError(f"unknown metric {name!r}; one of {', '.join(METRIC_NAMES)} or metric:<name>")


class Signal(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One input of a correlation: a metric, its optional change and lag, and the condition it must meet."""

    metric: str
    op: Op
    value: float
    window: Duration = "1m"
    change: Change | None = None
    lag: Duration = "0s"

    def __post_init__(self) -> None:
        _check_metric(self.metric)


class Rule(msgspec.Struct, forbid_unknown_fields=True, frozen=True, tag_field="kind"):
    name: Name
    summary: Text
    runbook: Text
    campaign: str | None = None
    """Only this campaign; default every campaign."""
    by: By | None = None
    for_: Duration = msgspec.field(default=DEFAULT_FOR, name="for")
    panel: Literal["gmv", "funnel", "inventory", "channels", "alerts"] = "alerts"
    labels: dict[str, str] = {}
    guard: list[Signal] = []
    """Conditions that must all hold for the rule to be judged at all (e.g. enough visits for a ratio to mean
    something); while they do not, the rule's alerts recover."""


class StaticRule(Rule, tag="static", frozen=True):
    metric: str = ""
    window: Duration = "1m"
    change: Change | None = None
    conditions: Conditions = Conditions()
    recover_margin: float = DEFAULT_RECOVER_MARGIN

    def __post_init__(self) -> None:
        _check_metric(self.metric)
        if not self.conditions.tiers():
            raise ValueError("at least one of reminder, warning, emergency needs a condition")


class DynamicRule(Rule, tag="dynamic", frozen=True):
    metric: str = ""
    window: Duration = "1m"
    """The step of the watched series: each point is the metric over this window."""
    expected: Literal["baseline", "forecast", "auto"] = "auto"
    """``baseline``: last year's value at the same offset times this year's pre-heat growth over last year's
    (as is until the pre-heat is long enough to measure it), refined by the growth the detector learns
    (points without a baseline are skipped); ``forecast``: the online seasonal forecast only; ``auto``: the
    baseline where it has data, else the forecast."""
    sensitivity: Annotated[float, msgspec.Meta(ge=0, le=1)] = DEFAULT_SENSITIVITY
    """0 = only the wildest deviations, 1 = the narrowest band (see alerts/evaluation/detectors.py)."""
    direction: Literal["up", "down", "both"] = "both"
    min_history: Duration = DEFAULT_MIN_HISTORY
    """No alert before the series has this much history (warm-up); a restart refills it from stored metrics."""
    tiers: dict[Severity, Annotated[float, msgspec.Meta(gt=0, le=1)]] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_SCORE_TIERS)
    )

    def __post_init__(self) -> None:
        _check_metric(self.metric)


class CorrelationRule(Rule, tag="correlation", frozen=True):
    all: list[Signal] = []
    any: list[Signal] = []
    severity: Severity = "warning"

    def __post_init__(self) -> None:
        if not self.all and not self.any:
            raise ValueError("correlation rules need signals under all and/or any")


AnyRule = StaticRule | DynamicRule | CorrelationRule


class RuleFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    rules: list[AnyRule] = []
    inhibit: list[InhibitRule] = []

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)


def parse(text: str, source: str = "<text>") -> RuleFile:
    return configfile.parse(text, RuleFile, source)


def load_file(path: Path) -> RuleFile:
    return configfile.load(path, RuleFile)


@contextlib.contextmanager
def metrics_are_columns() -> Iterator[None]:
    """Within this block rules may name any metric: a backtest's metrics are its CSV columns."""
    token = _series_columns.set(True)
    try:
        yield
    finally:
        _series_columns.reset(token)


def load_for_series(path: Path) -> RuleFile:
    """A rule file for a backtest: metrics are the series' column names."""
    with metrics_are_columns():
        return configfile.load(path, RuleFile)


def load_directory(directory: Path) -> RuleFile:
    """Every rule and inhibit rule in ``directory/*.yaml``; rule names must be unique across files."""
    rules: list[AnyRule] = []
    inhibit: list[InhibitRule] = []
    origin: dict[str, Path] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]) if directory.is_dir() else []:
        loaded = load_file(path)
        for rule in loaded.rules:
            if rule.name in origin:
                raise configfile.ConfigError(
                    str(path), None, None, rule.name, f"rule name also used in {origin[rule.name]}"
                )
            origin[rule.name] = path
            rules.append(rule)
        inhibit += loaded.inhibit
    return RuleFile(rules=rules, inhibit=inhibit)
