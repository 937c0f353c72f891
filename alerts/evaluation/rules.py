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

Which metrics a rule may name is the caller's choice, passed to ``parse``: the
engine's metrics for live rules (``engine_metric``), any column of the series
for a backtest (``series_column``). Durations stay as written (the API shows
them so) and are converted to seconds once, when the rule is loaded (``window_s``,
``for_s``, ...), so evaluation never parses text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from alerts.evaluation.inhibit import InhibitRule
from alerts.evaluation.metricview import METRIC_NAMES, known_metric
from alerts.evaluation.severity import MOST_SEVERE_FIRST, Severity
from app.core import configfile
from app.core.quantities import Unit

DEFAULT_FOR = "0s"
DEFAULT_RECOVER_POINTS = 0.01
"""A firing tier of a ratio or a change resolves once the value is this much beyond the threshold, in the value's
own unit: 0.01 is one percentage point (a success rate firing below 0.95 recovers at 0.96; a change firing at
-30% recovers at -29%). Relative to the threshold it could land above the metric's normal level (5% beyond 0.95
is 0.9975, which a shop paying 98.5% of its orders never reaches)."""
DEFAULT_RECOVER_PERCENT = 5.0
"""A firing tier of a count or an amount resolves once the value is this percentage of the threshold beyond it."""
METRIC_UNITS: dict[str, Unit] = {
    **dict.fromkeys(
        (
            "visits",
            "page_views",
            "product_views",
            "add_to_cart",
            "checkouts",
            "orders_created",
            "orders_paid",
            "orders_cancelled",
            "refunds",
            "units_sold",
            "units_ordered",
            "cart_units",
            "stock_on_hand",
        ),
        "count",
    ),
    **dict.fromkeys(("gmv_created", "gmv_paid", "refund_amount", "spend", "aov", "uv_value"), "money"),
    **dict.fromkeys(
        (
            "conversion_rate",
            "payment_rate",
            "order_rate",
            "cart_rate",
            "refund_rate",
            "top_buyer_share",
            "pct_of_target",
            "projected_pct",
        ),
        "ratio",
    ),
    "sell_out_eta_min": "minutes",
    "sell_rate_per_min": "number",
}
"""The unit of every metric a rule can watch, declared once: recovery margins (a ratio's is absolute) and the alert
texts (a ratio reads 93.8%, money ¥17.75万 or ¥177.5K, ``alerts.evaluation.messages``) follow from it."""
RATIO_METRICS = frozenset(name for name, unit in METRIC_UNITS.items() if unit == "ratio")
"""Built-in metrics whose values are ratios: their recovery margin is absolute (percentage points)."""
BOUNDED_RATIOS = frozenset({"conversion_rate", "payment_rate", "refund_rate", "top_buyer_share"})
"""Ratios that cannot leave 0..1 on a normal night, so a recovery threshold outside it is refused at load. The others
can pass 1 (``projected_pct`` past target, ``cart_rate`` with carts filled from a wish list), and a named metric's
suffix says its unit, not its range."""
RATIO_SUFFIXES = ("_rate", "_ratio", "_share", "_pct")
"""A named metric (``metric:<name>``) or a backtest column whose name ends so is read as a ratio too."""
MONEY_SUFFIXES = ("_gmv", "_amount", "_spend", "_revenue")
"""A named metric whose name ends so is an amount in the campaign's currency."""
COUNT_SUFFIXES = ("_count", "_orders", "_units")
"""A named metric whose name ends so is a count; any other named metric is a plain number whose unit its
summary writes (``metric:page_load_ms``: "{value} ms")."""
DEFAULT_SCORE_TIERS: dict[Severity, float] = {Severity.REMINDER: 0.5, Severity.WARNING: 0.75, Severity.EMERGENCY: 0.95}
"""A dynamic score is a calibrated tail probability (alerts/evaluation/surprise.py): 0.5 at p ≈ 1e-5, 0.75 at 5e-7,
0.95 at 1e-10, the same for every series."""
DEFAULT_MIN_HISTORY = "30m"
DEFAULT_SENSITIVITY = 0.5
DEFAULT_COOLDOWN_POINTS = 10
"""A dynamic rule without ``cooldown`` keeps a firing alert for this many points (windows) after its score is back."""
MAX_COOLDOWN_POINTS = 1440
"""The longest cooldown, in points: a day of one-minute windows. Longer, an alert would outlive its incident by
more than the night it belongs to."""
CATALOG_ATTRIBUTES = frozenset({"safety_stock", "warning_level"})
SIGNAL_GROUPS = ("guard", "all", "any")
"""Where a rule lists signals, each naming a metric."""

Op = Literal["<", "<=", ">", ">=", "==", "!="]
By = Literal["channel", "sku", "category"]
Duration = Annotated[str, msgspec.Meta(pattern=r"^\d+(\.\d+)?(ms|s|m|h)$", description="e.g. 30s, 5m, 1h")]
Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(duration: str) -> float:
    """``"5m"`` → 300.0."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    if match is None:
        raise ValueError(f"not a duration: {duration!r} (use e.g. 30s, 5m, 1h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _convert_at_load(struct: msgspec.Struct, *durations: str) -> None:
    """Compute these cached ``*_s`` properties now, while the file is loaded, so evaluation never parses text."""
    for name in durations:
        getattr(struct, name)


class Text(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A message in both languages; ``{placeholders}`` are filled from the alert (value, threshold, labels…)."""

    en: str
    zh: str


class Change(msgspec.Struct, forbid_unknown_fields=True, frozen=True, dict=True):
    """Compare the metric with a reference instead of using it raw: value becomes ``current / reference - 1``."""

    vs: Literal["previous", "baseline"] = "previous"
    over: Duration = "10m"
    """For ``previous``: the period before the current window whose average is the reference."""
    min_reference: float = 0.0
    """Up to this reference a change raises no alert (none on 1 → 3 orders); a firing one still recovers on it."""
    min_z: float = 0.0
    """For counts and ratios of counts: the change counts only when ``|current - reference| / sqrt(current +
    reference)`` reaches this many standard deviations (both are Poisson counts; a ratio is judged on its
    numerator, the reference being the reference ratio times the current denominator), so quiet hours need a
    bigger swing than the peak."""
    scaled: bool = False
    """For ``baseline``: multiply last year's value by this year's growth (pre-heat total ÷ last year's), so a
    campaign running 25% above last year is compared with last year + 25%."""

    def __post_init__(self) -> None:
        _convert_at_load(self, "over_s")

    @cached_property
    def over_s(self) -> float:
        return seconds(self.over)


def metric_unit(metric: str) -> Unit:
    """The unit of ``metric``'s values: declared in ``METRIC_UNITS``, or for a named metric (``metric:<name>``) or a
    backtest column, said by its name's suffix (``RATIO_SUFFIXES``, ``MONEY_SUFFIXES``, ``COUNT_SUFFIXES``)."""
    name = metric.removeprefix("metric:")
    if name in METRIC_UNITS:
        return METRIC_UNITS[name]
    if name.endswith(RATIO_SUFFIXES):
        return "ratio"
    if name.endswith(MONEY_SUFFIXES):
        return "money"
    return "count" if name.endswith(COUNT_SUFFIXES) else "number"


def ratio_metric(metric: str) -> bool:
    """Whether ``metric``'s values are ratios: a built-in ratio, or a name ending in one of ``RATIO_SUFFIXES``."""
    return metric_unit(metric) == "ratio"


class Margin(msgspec.Struct, frozen=True):
    """How far beyond its threshold a firing tier's value must go to recover: ``amount`` in the value's own unit,
    or, when ``relative``, that fraction of the threshold."""

    amount: float
    relative: bool

    def beyond(self, threshold: float) -> float:
        return self.amount * abs(threshold) if self.relative else self.amount


def parse_margin(text: float | str | None, ratio: bool) -> Margin:
    """The margin a rule's ``recover_margin`` asks for: a number is absolute (in the value's unit), ``"5%"`` is
    relative to the threshold; without one, a ratio or a change recovers ``DEFAULT_RECOVER_POINTS`` beyond, a count
    or an amount ``DEFAULT_RECOVER_PERCENT`` of the threshold beyond."""
    if text is None:
        return Margin(DEFAULT_RECOVER_POINTS, False) if ratio else Margin(DEFAULT_RECOVER_PERCENT / 100, True)
    if isinstance(text, str):
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", text.strip())
        if match is None:
            raise ValueError(
                f"recover_margin: {text!r} is neither a number (in the value's unit, e.g. 0.005) nor a percentage "
                "of the threshold (e.g. '5%')"
            )
        return Margin(float(match.group(1)) / 100, True)
    if text < 0 or not math.isfinite(text):
        raise ValueError(f"recover_margin: {text:g} must be a finite number of at least 0")
    if ratio and text >= 1:
        raise ValueError(
            f"recover_margin: {text:g} is a whole ratio or more; the value is a ratio, so write 0.005 for half a "
            "percentage point, or '5%' for 5% of the threshold"
        )
    return Margin(float(text), False)


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

    def tiers(self) -> list[tuple[Severity, Condition]]:
        """Present tiers, most severe first (the first that holds decides the severity)."""
        return [(s, c) for s in MOST_SEVERE_FIRST if (c := getattr(self, s.value)) is not None]


MetricCheck = Callable[[str], None]
"""Raises ValueError for a metric name a rule may not use."""


def engine_metric(name: str) -> None:
    """A live rule watches a metric the engine computes."""
    if not known_metric(name):
        raise ValueError(f"unknown metric {name!r}; one of {', '.join(METRIC_NAMES)} or metric:<name>")


def series_column(name: str) -> None:
    """A backtest's rule watches a column of the series: any name will do, but there must be one."""
    if not name:
        raise ValueError("metric must name a column of the series")


class Signal(msgspec.Struct, forbid_unknown_fields=True, frozen=True, dict=True):
    """One input of a correlation: a metric, its optional change and lag, and the condition it must meet."""

    metric: str
    op: Op
    value: float
    window: Duration = "1m"
    change: Change | None = None
    lag: Duration = "0s"

    def __post_init__(self) -> None:
        _convert_at_load(self, "window_s", "lag_s")

    @cached_property
    def window_s(self) -> float:
        return seconds(self.window)

    @cached_property
    def lag_s(self) -> float:
        return seconds(self.lag)


class Rule(msgspec.Struct, forbid_unknown_fields=True, frozen=True, tag_field="kind", dict=True):
    name: Name
    summary: Text
    runbook: Text
    resolved: Text | None = None
    """How its alert reads once resolved (a recovery, not the emergency's words), from the values it last read and
    the threshold it fired at; default ``messages.resolved_template``."""
    campaign: str | None = None
    """Only this campaign; default every campaign."""
    by: By | None = None
    for_: Duration = msgspec.field(default=DEFAULT_FOR, name="for")
    panel: Literal["gmv", "funnel", "inventory", "channels", "alerts"] = "alerts"
    labels: dict[str, str] = {}
    guard: list[Signal] = []
    """Conditions that must all hold for the rule to be judged at all (e.g. enough visits for a ratio to mean
    something); while they do not, the rule's alerts recover."""

    def __post_init__(self) -> None:
        _convert_at_load(self, "for_s")

    @cached_property
    def for_s(self) -> float:
        return seconds(self.for_)


class StaticRule(Rule, tag="static", frozen=True):
    metric: str = ""
    window: Duration = "1m"
    change: Change | None = None
    conditions: Conditions = Conditions()
    recover_margin: float | str | None = None
    """How far beyond a firing tier's threshold the value must go for the tier to recover (see ``parse_margin``)."""

    def __post_init__(self) -> None:
        if not self.conditions.tiers():
            raise ValueError("at least one of reminder, warning, emergency needs a condition")
        super().__post_init__()
        _convert_at_load(self, "window_s", "margin")
        if self.change is None and self.metric in BOUNDED_RATIOS:
            self._check_recovery_reachable()

    @cached_property
    def window_s(self) -> float:
        return seconds(self.window)

    @cached_property
    def ratio(self) -> bool:
        """Whether the compared value is a ratio: a ratio metric, or any metric's change (``current / ref - 1``)."""
        return self.change is not None or ratio_metric(self.metric)

    @cached_property
    def margin(self) -> Margin:
        return parse_margin(self.recover_margin, self.ratio)

    def _check_recovery_reachable(self) -> None:
        """A ratio never leaves 0..1: a tier whose recovery threshold lies outside would fire for ever."""
        for severity, condition in self.conditions.tiers():
            if not isinstance(condition.value, (int, float)) or condition.recover is not None:
                continue
            up = condition.op in ("<", "<=")
            limit = condition.value + self.margin.beyond(condition.value) * (1 if up else -1)
            if condition.op in ("<", "<=", ">", ">=") and not 0 <= limit <= 1:
                raise ValueError(
                    f"recover_margin: the {severity.value} tier would recover only at {limit:g}, outside the ratio's "
                    "0..1: it could never resolve; give a smaller margin (e.g. 0.005, half a percentage point)"
                )


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
    cooldown: Duration | None = None
    """One incident, one page: a firing tier recovers only once the score has stayed below its recovery level for
    this long after the first point back (Prometheus' ``keep_firing_for``), counted in points of the series: windows
    live, rows in a backtest (``cooldown / window`` of them). Meanwhile the alert stays the same firing alert; its
    severity may rise. A whole number of windows; default ``DEFAULT_COOLDOWN_POINTS`` windows; ``0s`` recovers at
    the first point back."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _convert_at_load(self, "window_s", "min_history_s", "cooldown_points")

    @cached_property
    def cooldown_points(self) -> int:
        """The cooldown in points of the series; refused unless a whole number of windows, at most a day's worth."""
        if self.cooldown is None:
            return DEFAULT_COOLDOWN_POINTS
        if self.window_s <= 0:
            raise ValueError("window: must be longer than 0s")
        points = seconds(self.cooldown) / self.window_s
        if abs(points - round(points)) > 1e-9:
            raise ValueError(
                f"cooldown: {self.cooldown} is not a whole number of windows ({self.window}); it is counted in points "
                "of the series, one per window"
            )
        if round(points) > MAX_COOLDOWN_POINTS:
            raise ValueError(
                f"cooldown: {self.cooldown} is {round(points)} windows of {self.window}; at most {MAX_COOLDOWN_POINTS}"
            )
        return round(points)

    @cached_property
    def window_s(self) -> float:
        return seconds(self.window)

    @cached_property
    def min_history_s(self) -> float:
        return seconds(self.min_history)


class CorrelationRule(Rule, tag="correlation", frozen=True):
    all: list[Signal] = []
    any: list[Signal] = []
    severity: Severity = Severity.WARNING

    def __post_init__(self) -> None:
        if not self.all and not self.any:
            raise ValueError("correlation rules need signals under all and/or any")
        super().__post_init__()


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


def _check_metrics(rules: RuleFile, marks: configfile.Marks, source: str, check: MetricCheck) -> None:
    """Every metric a rule names passes ``check``; an error names the rule (or its signal) and its line.
    Within a rule its signals come first, in the order they are written, then its own metric."""

    def at(name: str, path: tuple[str | int, ...]) -> None:
        try:
            check(name)
        except ValueError as exc:
            raise configfile.error_at(source, marks, path, str(exc)) from None

    for index, rule in enumerate(rules.rules):
        path: tuple[str | int, ...] = ("rules", index)
        signals = [
            ((*path, group, i), signal) for group in SIGNAL_GROUPS for i, signal in enumerate(getattr(rule, group, []))
        ]
        for where, signal in sorted(signals, key=lambda entry: marks.get(entry[0], (0, 0))):
            at(signal.metric, where)
        if isinstance(rule, (StaticRule, DynamicRule)):
            at(rule.metric, path)


def parse(text: str, source: str = "<text>", metrics: MetricCheck = engine_metric) -> RuleFile:
    """The rules in ``text``; each metric they name must pass ``metrics``."""
    rules, marks = configfile.parse_located(text, RuleFile, source)
    _check_metrics(rules, marks, source, metrics)
    return rules


def load_file(path: Path, metrics: MetricCheck = engine_metric) -> RuleFile:
    return parse(path.read_text(encoding="utf-8"), str(path), metrics)


def load_for_series(path: Path) -> RuleFile:
    """A rule file for a backtest: metrics are the series' column names."""
    return load_file(path, series_column)


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
