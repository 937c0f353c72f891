"""Dynamic-threshold anomaly detection for one metric series (动态阈值).

A `Detector` is fed one point at a time and says how improbable the point is
given what it has seen so far (causal: no look-ahead, fresh state per series,
O(1) work per point once warmed up, apart from a sorted window of past
surprises).

The expectation is a robust Holt-Winters forecast: level, damped trend and
one seasonal cycle, on a Box-Cox scale (none, square root or log) chosen so
that the noise is homogeneous. The season comes from the timestamps (a day
or a week in points) or from autocorrelation, and it is chosen, with how
fast the level follows the data, by which candidate forecasts the later half
of the history best; it is chosen again once a whole day (or week) has been
seen twice. The spread is a robust residual σ; a seasonal slot that is
habitually noisier (a recurring sale burst) gets a wider one.

Counts are counts: a series of whole numbers ≥ 0 whose noise is at least
Poisson's is never given a spread narrower than counting noise, and while
its expected value is small a point is judged by the Poisson (negative
binomial when over-dispersed) tail of the count itself, so a lone 1 after
zeros is ordinary and 0 where 40 were expected is not.

The point's surprise (-ln of its one-sided tail probability under the
model) is then calibrated against the series' own recent surprises (see
`alerts.evaluation.surprise`): spikes that recur become ordinary, a spike
larger than any seen does not. Two short averages of the calibrated normal
scores catch what no single point shows: a sustained shift (their mean) and
a variance change (their mean square), each with its own tail probability.
The score is the largest surprise of the point, the shift, the variance
change and a flat-line (a run of repeats improbable for the series), mapped
by `surprise.score_of`: 0 while p ≥ 1e-2, 0.5 at 1e-5, 0.75 at 5e-7, 0.95
at 1e-10, never 1 in practice, the same for every series.

Anomalies are kept out of the model: residuals are clipped before they move
level, trend and season and no longer move them at all beyond REJECT_Z σ;
only the first point of a run of extreme points enters the window of
surprises, so one long incident does not teach the series that incidents
are normal. A level shift is alerted on, then adopted once most of the last
few points lie beyond the same side, and a return to the level from before
it raises no second alert.

A baseline may come with each point: the same moment of the baseline
campaign (同期, e.g. last year's Double 11 on this year's clock). Its growth
over the baseline is learnt as a ratio, and a point the grown baseline
explains better than the model (the midnight rush that also happened last
year) is judged against it instead.

Pure logic: no I/O, no clock; equal inputs give equal scores.
"""

from __future__ import annotations

import cmath
import math
import operator
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Literal, NamedTuple

from alerts.evaluation.surprise import (
    QUIET_SURPRISE,
    REMINDER_DECADES,
    SQRT2,
    TAIL_POINTS,
    Tail,
    count_surprise,
    normal_quantile,
    normal_surprise,
    score_of,
)

DEFAULT_SENSITIVITY = 0.5
"""On a 0..1 scale; surprises are multiplied by 4^(sensitivity - 0.5) before scoring: at 0 the reminder needs
p ≈ 1e-10, at 0.5 (default) 1e-5, at 1 3e-3."""
DEFAULT_MIN_HISTORY = 300
"""Points seen before any score; a season is only found once two cycles are in the history."""

MAX_PERIOD = 2016
"""Longest season considered, in points (a week of 5-minute points)."""
MIN_PERIOD = 3
ACF_MIN = 0.2
"""Autocorrelation a lag needs to be a season candidate besides the calendar ones."""
CALENDAR_TOLERANCE = 0.01
"""How close to a whole number of points a day or a week must be to count as a calendar season."""
CALENDAR_NEIGHBOURHOOD = 0.05
"""An autocorrelation peak this close to a calendar season is taken for it."""
DAY = 86400.0
WEEK = 7 * DAY
ROUND_INTERVALS = (
    1,
    2,
    5,
    10,
    15,
    20,
    30,
    60,
    120,
    180,
    300,
    600,
    900,
    1200,
    1800,
    3600,
    7200,
    10800,
    14400,
    21600,
    43200,
    86400,
)
"""Sampling intervals (seconds) that a jittered median interval is snapped to."""
SNAP_TOLERANCE = 0.05
SELECTION_CAP_Z = 4.0
"""Forecast errors are capped at this many σ (of the first differences) when comparing candidates."""

ALPHAS = (0.03, 0.12, 0.4, 0.8)
"""Level smoothing candidates; the warm-up picks the one that forecasts best."""
SELECTION_ALPHA = 0.12
"""Level smoothing used while comparing seasons."""
TREND_GAIN = 0.01
"""Trend smoothing, as a fraction of the level's."""
TREND_DAMPING = 0.98
SEASON_GAIN = 0.2
"""Seasonal smoothing per cycle: a slot moves a fifth of the way to each new observation."""
SHRINK_Z = 2.0
DISCORD_Z = 6.0
"""Two cycles of a seasonal slot further apart than this many noise σ disagree: one of them is an outlier."""
"""A seasonal slot learnt from few cycles is shrunk towards 0 unless it stands this many noise σ out."""
SPREAD_GAIN = 0.01
"""How fast the global residual spread follows the in-band residuals (about 100 points)."""
PHASE_SPREAD_GAIN = 0.1
"""How fast a seasonal slot learns that it is noisier than the rest (recurring bursts)."""
BAND_Z = 5.0
"""Residuals within this many σ are in band: only they move the spread, and only beyond it does a run start."""
CLIP_Z = 2.5
"""Residuals are clipped at this many σ before they update level, trend and season."""
REJECT_Z = 5.0
"""Beyond this many σ a residual no longer moves the model at all (it is left to the shift rule)."""
MAD_TO_SIGMA = math.sqrt(math.pi / 2)
"""Mean absolute deviation → standard deviation for Gaussian noise."""
MEDIAN_TO_SIGMA = 1.4826
MAD_EFFICIENCY = 0.37
"""A robust σ from n points is worth about 0.37 n points' worth of a standard deviation (its efficiency)."""
MAX_FREEDOM = MAD_EFFICIENCY * 2 / SPREAD_GAIN
"""A σ learnt with SPREAD_GAIN remembers about 2 / SPREAD_GAIN points: residuals are judged by a Student-t with at
most this many degrees of freedom (via Wallace's normalising transform), fewer while the history is short."""
SPREAD_FLOOR = 1e-6
"""Smallest σ, relative to the typical magnitude of the series, so a constant series stays scorable."""

POWERS = (1.0, 0.5, 0.0)
"""Box-Cox powers tried on a positive series: none, square root (counts), log (multiplicative noise)."""
POWER_TRIM = 0.02
"""Share of the largest step-to-step changes left out when choosing the Box-Cox power."""
TRANSFORM_FLOOR = 1e-3
"""Values at or below 0 are judged as this fraction of the history's median once a power below 1 is in use."""

COUNT_MIN_DISPERSION = 0.5
"""A series of whole numbers is a count when its step-to-step variance (halved) is at least this times its mean
(Poisson noise gives 1, give or take a sampling error that a few hundred points keep well above 0.5)."""
COUNT_EXACT = 30.0
"""Below this expected count a point is judged by the exact count tail; above, by the Gaussian one."""
COUNT_MIN_MEAN = 0.25
"""The smallest expected count a point is judged against: after a long run of zeros a 1 or a 2 is no incident."""
COUNT_SLACK = 1.0
"""Residuals within this many counts beyond the clip still move the level fully, so a small mean isn't biased low."""
DISPERSION_GAIN = 0.01
"""How fast a count series' over-dispersion (variance / mean) is learnt."""
DISPERSION_CAP = 25.0
"""One point moves the over-dispersion estimate as if its squared residual were at most this many means."""

EXTREME_P = 0.01
"""A point whose calibrated one-sided probability is below this is extreme: it starts or continues a run."""
SCORE_GAIN = 0.25
"""Weight of the newest point in the short averages of normal scores (a memory of about 7 points)."""
SCORE_CLIP = 2.5
"""Normal scores are clipped at this many σ in those averages, so one spike can't carry them."""
SHORT_VARIANCE = SCORE_GAIN / (2 - SCORE_GAIN)
"""Variance of the short average of independent unit-variance scores: the least it is ever taken to be."""
SHORT_SQUARE_VARIANCE = 2 * SHORT_VARIANCE
"""Variance of the short average of their squares (a χ² with (2 - gain) / gain degrees of freedom, scaled)."""
QUIET_Z = 2.0
"""A short average within this many σ of its calm value is not worth a surprise (it would score 0 anyway)."""
CALM_GAIN = 0.005
"""How fast the averages' own spread is learnt from points that are not extreme (about 200 of them)."""

SHIFT_WINDOW = 8
SHIFT_RUN = 6
"""When SHIFT_RUN of the last SHIFT_WINDOW points are extreme on the same side, the level is moved to them."""
RETURN_MEMORY = DAY
"""How long (seconds) the level from before an adopted shift is remembered, so going back to it is no new alert."""
RETURN_RUN = 2
"""Consecutive points back within the remembered band after which the old level is restored."""
REFERENCE_GAIN = 0.05
"""How fast the growth of the series over its baseline campaign (a ratio, or a difference) is learnt."""
REFERENCE_WARMUP = 12
"""Baseline values seen before the baseline may explain a point."""
REFERENCE_FLOOR = 1e-12
"""Smallest value in a growth ratio, so a collapse to 0 is a large (finite) deviation."""
FLAT_MIN_RUN = 12
FLAT_PROBABILITY = 1e-4
"""A run of repeated values is a flat-line once the warm-up repeat rate makes it this improbable."""
FLAT_MIN_RATE = 0.3
"""A run's probability is never taken as lower than this per repeat, even for a series that never repeated."""
FLAT_ADOPT = 4
"""A flat-line is accepted as the new normal after this many times the run that raised it."""
EXP_CAP = 700.0
"""A log-scale value is brought back as e^min(y, EXP_CAP), so a runaway forecast stays finite."""
LN_EXTREME = math.log(EXTREME_P)
LN2 = math.log(2)


@dataclass(frozen=True)
class DetectorConfig:
    """How one series is watched; every default suits minute-to-hour business metrics."""

    sensitivity: float = DEFAULT_SENSITIVITY
    direction: Literal["up", "down", "both"] = "both"
    min_history: int = DEFAULT_MIN_HISTORY
    period: int | None = None
    """Seasonal period in points; None finds it from the data, 1 disables seasonality."""


DEFAULT_CONFIG = DetectorConfig()


class Assessment(NamedTuple):
    """One point judged against what the series made likely.

    ``score`` is `surprise.score_of` of the point's calibrated tail
    probability (or of the shift, variance or flat-line one, whichever is
    smallest): 0 while p ≥ 1e-2, 0.5 at 1e-5, 0.75 at about 5e-7 and 0.95 at
    about 1e-10 at the default sensitivity. ``lower``..``upper`` is the band
    a point can lie in without reaching 0.5 on its own. A named tuple, not a
    frozen dataclass: one is built per point, and a tuple is built several
    times faster.
    """

    score: float
    expected: float | None
    lower: float | None
    upper: float | None
    ready: bool


WARMING_UP = Assessment(0.0, None, None, None, False)


def sensitivity_gain(sensitivity: float) -> float:
    """The factor surprises are multiplied by before scoring: 1 at the default sensitivity, 2 at 1, 0.5 at 0."""
    clamped = min(1.0, max(0.0, sensitivity))
    return 4.0 ** (clamped - 0.5)


def _box_cox(x: float, power: float, lowest: float) -> float:
    """Box-Cox transform; values below `lowest` (an outage to 0 on a log scale) are judged as `lowest`."""
    if power == 1.0:
        return x
    if x < lowest:
        x = lowest
    if power == 0.0:
        return math.log(x)
    return (x**power - 1) / power


def _box_cox_all(values: list[float], power: float, lowest: float) -> list[float]:
    """`_box_cox` of every value of a history, as one list comprehension."""
    if power == 1.0:
        return list(values)
    if power == 0.0:
        return [math.log(lowest if x < lowest else x) for x in values]
    return [((lowest if x < lowest else x) ** power - 1) / power for x in values]


class _History(NamedTuple):
    """A stretch of history on a model's scale and what every model fitted to it shares, worked out once however
    many season candidates are fitted to it."""

    indices: list[int]
    """Grid indices (in order)."""
    values: list[float]
    """Box-Cox transformed values."""
    mean_index: float
    mean_value: float
    noise: float
    """Noise σ from first differences."""
    floor: float
    """The smallest σ: SPREAD_FLOOR of the typical magnitude."""
    flat_rate: float
    """Share of points repeating the previous one (at least FLAT_MIN_RATE)."""
    flat_run: int
    """Repeats that make a flat-line (FLAT_PROBABILITY at that rate)."""
    freedom: float
    """Degrees of freedom of a σ fitted to this many points."""


def _history(indices: list[int], values: list[float]) -> _History:
    """A stretch of history (grid indices, transformed values) with its shared statistics."""
    count = len(values)
    repeats = sum(map(operator.eq, values, values[1:]))
    rate = repeats / max(1, count - 1)
    flat_run = FLAT_MIN_RUN
    if rate > 0:
        flat_run = max(FLAT_MIN_RUN, math.ceil(math.log(FLAT_PROBABILITY) / math.log(rate)) if rate < 1 else 1 << 30)
    return _History(
        indices,
        values,
        sum(indices) / count,
        sum(values) / count,
        _difference_sigma(values),
        max(_median(list(map(abs, values))), 1e-9) * SPREAD_FLOOR,
        max(FLAT_MIN_RATE, rate),
        flat_run,
        min(MAX_FREEDOM, max(1.0, MAD_EFFICIENCY * count)),
    )


def _shrink(value: float, noise: float) -> float:
    """Non-negative garrote: drops a seasonal slot that is within its noise, keeps a clear one nearly whole."""
    if value * value <= noise * noise:
        return 0.0
    return value - noise * noise / value


def _run_surprise(total: float, length: int) -> float:
    """-ln P that `length` independent points are together at least `total` nats surprising (Fisher's method: the
    sum of their surprises is a Gamma(length) variable), so a run of zeros where twenty orders a minute are normal
    weighs more than its first zero alone. Only for counts, whose noise is independent from point to point (a
    sensor's residuals are not: its extremes come in runs)."""
    term, tail = 1.0, 1.0
    for k in range(1, length):
        term *= total / k
        tail += term
    return total - math.log(tail)


def _slot_level(slots: list[list[float]], k: int, discord: float) -> float:
    """A seasonal slot's typical value: the median of its cycles; of two that disagree by more than `discord`, the
    one closer to the two slots either side, so a spike (or a train of three) in one of two cycles does not become
    the season."""
    slot = slots[k]
    if len(slot) == 2 and abs(slot[0] - slot[1]) <= discord:
        return 0.5 * (slot[0] + slot[1])
    if len(slot) != 2:
        return _median(slot) if slot else 0.0
    count = len(slots)
    around = [v for j in (-2, -1, 1, 2) for v in slots[(k + j) % count]]
    if not around:
        return _median(slot)
    near = _median(around)
    return slot[0] if abs(slot[0] - near) <= abs(slot[1] - near) else slot[1]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return 0.5 * (ordered[middle - 1] + ordered[middle])


def _is_count(values: list[float]) -> tuple[bool, float]:
    """Whether the history looks like counts, and its over-dispersion (variance / mean, at least 1).

    Whole numbers ≥ 0, small on average (and not constant) or with a
    step-to-step variance at least half Poisson's: a speed sensor reporting
    whole miles per hour is steadier than counting noise and is not a count,
    while a SKU selling a steady two a minute through a short warm-up is.
    """
    if not all(v >= 0 and v == int(v) for v in values):
        return False, 1.0
    mean = sum(values) / len(values)
    if mean <= 0:
        return True, 1.0
    variance = sum((b - a) ** 2 for a, b in zip(values, values[1:], strict=False)) / max(1, 2 * (len(values) - 1))
    ratio = variance / mean
    small = mean <= COUNT_EXACT and variance > 0
    return small or ratio >= COUNT_MIN_DISPERSION, max(1.0, min(DISPERSION_CAP, ratio))


class _Model:
    """The forecasting and judging state of one series once its season and smoothing are chosen."""

    __slots__ = (
        "t0",
        "dt",
        "period",
        "alpha",
        "beta",
        "index",
        "level",
        "trend",
        "season",
        "mad",
        "phase_mad",
        "seen",
        "floor",
        "up",
        "down",
        "both",
        "run",
        "run_values",
        "run_level",
        "recent",
        "previous_level",
        "previous_until",
        "returning",
        "memory",
        "gap",
        "gap_mad",
        "gap_seen",
        "gap_ratio",
        "last_value",
        "repeats",
        "flat_run",
        "flat_rate",
        "power",
        "lowest",
        "count",
        "dispersion",
        "tail",
        "drift",
        "square",
        "drift_variance",
        "square_mean",
        "square_variance",
        "extreme_side",
        "freedom",
        "run_surprise",
        "run_length",
    )

    def __init__(
        self,
        t0: float,
        dt: float,
        period: int,
        alpha: float,
        direction: str,
        power: float = 1.0,
        lowest: float = 0.0,
        count: bool = False,
        dispersion: float = 1.0,
    ) -> None:
        self.power = power
        self.lowest = lowest
        self.count = count
        self.dispersion = dispersion
        self.t0 = t0
        self.dt = dt
        self.period = period
        self.alpha = alpha
        self.beta = alpha * TREND_GAIN
        self.index = 0
        self.level = 0.0
        self.trend = 0.0
        self.season = [0.0] * period
        self.mad = 0.0
        self.phase_mad = [0.0] * period
        self.seen = [0] * period
        self.floor = 0.0
        self.up = direction != "down"
        self.down = direction != "up"
        self.both = direction == "both"
        self.run = 0
        self.run_values: list[float] = []
        self.run_level = 0.0
        self.recent: deque[tuple[int, float, float]] = deque(maxlen=SHIFT_WINDOW)
        self.previous_level: float | None = None
        self.previous_until = 0
        self.gap = 0.0
        self.gap_mad = 0.0
        self.gap_seen = 0
        self.gap_ratio = True
        self.returning = 0
        self.memory = max(4 * SHIFT_RUN, round(RETURN_MEMORY / dt))
        self.last_value = math.nan
        self.repeats = 0
        self.flat_run = FLAT_MIN_RUN
        self.flat_rate = FLAT_MIN_RATE
        self.tail = Tail()
        self.drift = 0.0
        self.square = 1.0
        self.drift_variance = SHORT_VARIANCE
        self.square_mean = 1.0
        self.square_variance = SHORT_SQUARE_VARIANCE
        self.extreme_side = 0
        self.run_surprise = 0.0
        self.run_length = 0
        """The summed surprise and length of the current run of extreme points on one side."""
        self.freedom = MAX_FREEDOM
        """Degrees of freedom of the Student-t a residual is judged by: fewer while the history it was fitted on
        is short (little trust in σ); fixed until the model is chosen again, so surprises stay comparable."""

    def fit(self, history: _History) -> None:
        """Initialise level, trend, season and spread from a stretch of history (on the model's scale)."""
        period = self.period
        indices, values = history.indices, history.values
        count = len(values)
        mean_index, mean_value = history.mean_index, history.mean_value
        slope = _slope(indices, values, period, mean_index, mean_value)
        detrended = [v - mean_value - slope * (i - mean_index) for i, v in zip(indices, values, strict=False)]
        phases = [i % period for i in indices]
        slots: list[list[float]] = [[] for _ in range(period)]
        for k, d in zip(phases, detrended, strict=False):
            slots[k].append(d)
        lengths = [len(slot) for slot in slots]
        discord = DISCORD_Z * history.noise
        levels = [slot[0] if len(slot) == 1 else _slot_level(slots, k, discord) for k, slot in enumerate(slots)]
        centre = sum(level for level, slot in zip(levels, slots, strict=False) if slot) / (period - lengths.count(0))
        season = [(level - centre) if slot else 0.0 for level, slot in zip(levels, slots, strict=False)]
        residuals = [d - season[k] for k, d in zip(phases, detrended, strict=False)]
        if period == 1:
            deviations = [abs(r) for r in residuals]
        else:
            inflation = [math.sqrt(n / (n - 1)) if n > 1 else 0.0 for n in lengths]
            deviations = [abs(r) * inflation[k] for k, r in zip(phases, residuals, strict=False) if lengths[k] > 1]
        self.floor = history.floor
        if len(deviations) >= count // 4 and period > 1:
            sigma = MEDIAN_TO_SIGMA * _median(deviations)
        else:
            sigma = history.noise
            if period == 1:
                sigma = min(sigma, MEDIAN_TO_SIGMA * _median(deviations)) if deviations else sigma
        self.mad = max(sigma, self.floor) / MAD_TO_SIGMA
        self.phase_mad = [self.mad] * period
        if period > 1:
            season = [
                _shrink(value, SHRINK_Z * sigma / math.sqrt(len(slot))) if slot else 0.0
                for value, slot in zip(season, slots, strict=False)
            ]
            residuals = [d - season[k] for k, d in zip(phases, detrended, strict=False)]
        self.season = season
        self.seen = lengths
        tail = residuals[-min(count, max(5, min(period, count // 4))) :]
        self.index = indices[-1]
        self.level = mean_value + slope * (self.index - mean_index) + _median(tail)
        self.trend = slope
        self.last_value = values[-1]
        self.freedom = history.freedom
        self.flat_rate = history.flat_rate
        self.flat_run = history.flat_run

    def inherit(self, other: _Model) -> None:
        """Carry the judging memory (window of surprises, dispersion, score averages) over from an earlier model."""
        self.tail = other.tail
        self.dispersion = other.dispersion
        self.drift, self.square = other.drift, other.square
        self.drift_variance, self.square_mean = other.drift_variance, other.square_mean
        self.square_variance = other.square_variance

    def inverse(self, y: float) -> float:
        """A transformed value back on the series' own scale."""
        power = self.power
        if power == 1.0:
            return y
        if power == 0.0:
            return math.exp(EXP_CAP if y > EXP_CAP else y)
        base = power * y + 1
        return base ** (1 / power) if base > 0 else 0.0

    def forecast(self, t: float) -> tuple[float, float]:
        """Expected value and σ (transformed scale) at time t, without learning from it."""
        index = round((t - self.t0) / self.dt)
        steps = index - self.index
        level = self.level
        if steps > 0:
            level += self.trend * TREND_DAMPING * (1 - TREND_DAMPING**steps) / (1 - TREND_DAMPING)
        phase = index % self.period
        expected = level + self.season[phase]
        return expected, self._spread(phase, expected)[0]

    def _spread(self, phase: int, expected: float) -> tuple[float, float]:
        """σ at a seasonal slot (transformed scale), never below counting noise for a count; and the expected count.

        The count floor is Poisson's √mean carried through the Box-Cox
        transform's slope; the expected count is 0 for a series that is not one.
        """
        mad = self.mad
        if self.period > 1:
            phase_mad = self.phase_mad[phase]
            if phase_mad > mad:
                mad = phase_mad
        sigma = mad * MAD_TO_SIGMA
        floor = self.floor
        if sigma < floor:
            sigma = floor
        if not self.count:
            return sigma, 0.0
        power = self.power
        mean = self.inverse(expected) if power != 1.0 else expected
        if mean < COUNT_MIN_MEAN:
            mean = COUNT_MIN_MEAN
        counting = math.sqrt(mean) if power == 1.0 else math.sqrt(mean) * mean ** (power - 1.0)
        return (counting if counting > sigma else sigma), mean

    def step(self, t: float, x: float, reference: float | None = None) -> tuple[float, float, float]:
        """Judge and learn from one point; returns (expected, σ, surprise in nats) on the transformed scale.

        `reference` is the value at the same moment of an earlier period (the
        baseline campaign); when given, a point is judged against whichever
        of the model and the scaled reference explains it better.

        Besides the point's own surprise, two short averages of the points'
        normal scores catch what no single point shows. A point's normal
        score is Φ⁻¹ of its calibrated probability, clipped at SCORE_CLIP:
        unit-variance whatever the series' noise. How far the averages stray
        on this series when nothing is extreme is learnt, so autocorrelated
        noise widens their own bands. The shift's surprise is that of the
        average of signed scores under its calm variance (when the point is
        on the same side and on a side alerted on); the variance change's,
        that of the average of squared scores, a scaled χ² with its calm mean
        and variance (Wilson-Hilferty). Either counts only beyond QUIET_Z σ:
        below it, it would score 0 anyway.

        Every update runs this, so the Box-Cox transform, the spread, the
        point's surprise (the same arithmetic as `_box_cox`, `_spread` and
        `_point_surprise`, which the rarer paths call), learning and the
        short averages are worked out inline: a call costs as much as they do.
        """
        raw = x
        power = self.power
        if power != 1.0:
            lowest = self.lowest
            floored = lowest if x < lowest else x
            x = math.log(floored) if power == 0.0 else (floored**power - 1) / power
        count = self.count
        index = round((t - self.t0) / self.dt)
        level, trend = self.level, self.trend
        if index == self.index + 1:
            level += trend * TREND_DAMPING
            trend *= TREND_DAMPING
            self.index = index
        elif index > self.index:
            level, trend = self._advance(index)
        period = self.period
        phase = index % period
        seasonal = self.season[phase]
        deseasonalised = x - seasonal
        expected = level + seasonal
        residual = x - expected
        mad = self.mad
        if period > 1:
            phase_mad = self.phase_mad[phase]
            if phase_mad > mad:
                mad = phase_mad
        sigma = mad * MAD_TO_SIGMA
        if sigma < self.floor:
            sigma = self.floor
        mean = 0.0
        if count:
            mean = self.inverse(expected) if power != 1.0 else expected
            if mean < COUNT_MIN_MEAN:
                mean = COUNT_MIN_MEAN
            counting = math.sqrt(mean) if power == 1.0 else math.sqrt(mean) * mean ** (power - 1.0)
            if counting > sigma:
                sigma = counting
        size = residual if residual >= 0 else -residual
        if self.previous_level is not None and self._returned(index, deseasonalised, size, BAND_Z * sigma):
            return expected, sigma, 0.0
        # Learn: the residual moves level, trend and season whole up to CLIP_Z σ, fading to nothing at REJECT_Z σ;
        # for a count, COUNT_SLACK counts more are taken whole, so a mean of a few hundredths still learns from a
        # lone 1 and is not biased to 0.
        clip = CLIP_Z * sigma
        reject = REJECT_Z * sigma
        if count:
            slack = COUNT_SLACK if power == 1.0 else COUNT_SLACK * mean ** (power - 1.0)
            clip += slack
            reject += 2 * slack
        if size <= clip:
            clipped = residual
        else:
            weight = (reject - size) / (reject - clip) if size < reject else 0.0
            clipped = clip * weight if residual > 0 else -clip * weight
        self.level = level + self.alpha * clipped
        self.trend = trend + self.beta * clipped
        if period > 1:
            seen_by_phase, phase_mads = self.seen, self.phase_mad
            seen = seen_by_phase[phase] + 1
            seen_by_phase[phase] = seen
            self.season[phase] = seasonal + (SEASON_GAIN if seen * SEASON_GAIN >= 1 else 1 / seen) * clipped
            phase_mad = phase_mads[phase]
            phase_mads[phase] = phase_mad + PHASE_SPREAD_GAIN * ((size if size < clip else clip) - phase_mad)
        own = True
        if reference is not None:
            expected_by_reference, sigma_by_reference = self._follow_reference(x, raw, reference)
            residual_by_reference = x - expected_by_reference
            if math.isfinite(sigma_by_reference) and abs(residual_by_reference) * sigma < size * sigma_by_reference:
                own = False
                expected, residual = expected_by_reference, residual_by_reference
                size = residual if residual >= 0 else -residual
                if count:
                    floor, mean = self._spread(phase, expected)
                    sigma = max(sigma_by_reference, floor if floor > sigma_by_reference else 0.0)
                else:
                    sigma = sigma_by_reference
        above = residual > 0
        watched = self.up if above else self.down
        if count and mean < COUNT_EXACT:
            spread = sigma if power == 1.0 else sigma * mean ** (1.0 - power)
            variance = spread * spread
            over = self.dispersion * mean
            if over > variance:
                variance = over
            point = count_surprise(float(round(raw)) if raw > 0 else 0.0, mean, variance)
        else:
            z = residual / sigma if residual >= 0 else -residual / sigma
            freedom = self.freedom
            if freedom < MAX_FREEDOM:
                z = math.sqrt(freedom * math.log1p(z * z / freedom))
            point = -math.log(0.5 * math.erfc(z / SQRT2)) if z < 8.0 else normal_surprise(z)
        signed = point if above else -point
        tail = self.tail
        log_p = tail.upper(point) if above else tail.lower(point)
        side = (1 if above else -1) if log_p < LN_EXTREME else 0
        fresh = side == 0 or side != self.extreme_side
        surprise = -log_p if watched else 0.0
        if side == 0:
            if self.run_length:
                self.run_surprise, self.run_length = 0.0, 0
        else:
            if fresh:
                self.run_surprise, self.run_length = 0.0, 0
            self.run_surprise -= log_p
            self.run_length += 1
            if count and self.run_length > 1 and watched:
                joint = _run_surprise(self.run_surprise, self.run_length)
                if joint > surprise:
                    surprise = joint
        # The short averages of normal scores (a sustained shift, a variance change), before the point joins the
        # window: for a count with TAIL_POINTS beyond it, the score is Φ⁻¹ of its mid-rank among the window's
        # surprises (counts tie); otherwise of its calibrated probability.
        score = one_sided = 0.0
        window = len(tail.ordered) if count else 0
        if window:
            rank = tail.rank(signed)
            one_sided = 1.0 - rank if above else rank
        if one_sided * window >= TAIL_POINTS:
            if one_sided < 0.5:
                score = normal_quantile(-math.log(one_sided))
        elif log_p < -LN2:
            score = normal_quantile(-log_p)
        if score > SCORE_CLIP:
            score = SCORE_CLIP
        if not above:
            score = -score
        drift = self.drift + SCORE_GAIN * (score - self.drift)
        self.drift = drift
        square = self.square + SCORE_GAIN * (score * score - self.square)
        self.square = square
        if watched and drift * score > 0:
            variance = self.drift_variance if self.drift_variance > SHORT_VARIANCE else SHORT_VARIANCE
            z = (drift if drift > 0 else -drift) / math.sqrt(variance)
            if z > QUIET_Z:
                shift = normal_surprise(z)
                if shift > surprise:
                    surprise = shift
        if self.both:
            square_mean = self.square_mean if self.square_mean > 1.0 else 1.0
            if square > square_mean:
                variance = (
                    self.square_variance if self.square_variance > SHORT_SQUARE_VARIANCE else SHORT_SQUARE_VARIANCE
                )
                bias = variance / (4.5 * square_mean * square_mean)
                z = ((square / square_mean) ** (1.0 / 3.0) - 1.0 + bias) / math.sqrt(bias)
                if z > QUIET_Z:
                    widened = normal_surprise(z)
                    if widened > surprise:
                        surprise = widened
        if side == 0:
            self.drift_variance += CALM_GAIN * (drift * drift - self.drift_variance)
            self.square_mean += CALM_GAIN * (square - self.square_mean)
            self.square_variance += CALM_GAIN * ((square - self.square_mean) ** 2 - self.square_variance)
        if fresh:
            tail.add(signed)
            if count and own:
                squared = (raw - mean) ** 2 / mean
                self.dispersion += DISPERSION_GAIN * (
                    (squared if squared < DISPERSION_CAP else DISPERSION_CAP) - self.dispersion
                )
        self.extreme_side = side
        if size <= BAND_Z * sigma and own:
            self.mad += SPREAD_GAIN * (size - self.mad)
        self.recent.append((side, deseasonalised, level))
        if side:
            self._watch_shift(index, side)
        if x != self.last_value:
            self.repeats = 0
            self.last_value = x
            return expected, sigma, (surprise if surprise > 0.0 else 0.0)
        flat = self._flat_surprise(raw)
        return expected, sigma, (surprise if surprise > flat else flat)

    def _point_surprise(self, raw: float, x: float, residual: float, sigma: float, mean: float, above: bool) -> float:
        """-ln of the model's one-sided tail probability of the point: the count's own tail for a small count."""
        if self.count and mean < COUNT_EXACT:
            spread = sigma if self.power == 1.0 else sigma * mean ** (1.0 - self.power)
            variance = spread * spread
            over = self.dispersion * mean
            if over > variance:
                variance = over
            return count_surprise(float(round(raw)) if raw > 0 else 0.0, mean, variance)
        z = residual / sigma if residual >= 0 else -residual / sigma
        freedom = self.freedom
        if freedom < MAX_FREEDOM:
            z = math.sqrt(freedom * math.log1p(z * z / freedom))
        return normal_surprise(z)

    def judge(self, t: float, x: float) -> tuple[float, float, float]:
        """A late point (its time not after the last one learnt): judged against the model as it is, not learnt."""
        raw = x
        if self.power != 1.0:
            x = _box_cox(x, self.power, self.lowest)
        expected, _ = self.forecast(t)
        phase = round((t - self.t0) / self.dt) % self.period
        sigma, mean = self._spread(phase, expected)
        residual = x - expected
        above = residual > 0
        point = self._point_surprise(raw, x, residual, sigma, mean, above)
        if not (self.up if above else self.down):
            return expected, sigma, 0.0
        return expected, sigma, -(self.tail.upper(point) if above else self.tail.lower(point))

    def _follow_reference(self, x: float, raw: float, reference: float) -> tuple[float, float]:
        """Expected value and σ (transformed scale) from the reference times the growth learnt before; then learns it.

        The growth is a ratio, learnt on logs, when the first pair seen is
        positive (orders, GMV, traffic), else a difference; its spread is
        learnt on the same scale, so a tenfold rush is judged relative to its
        size. Until REFERENCE_WARMUP references have been seen the σ is
        infinite and the model alone judges.
        """
        if self.gap_seen == 0:
            self.gap_ratio = raw > 0 and reference > 0
        if self.gap_ratio:
            floor = self.lowest if self.lowest > 0 else REFERENCE_FLOOR
            gap = math.log(max(raw, floor) / max(reference, floor))
        else:
            gap = raw - reference
        self.gap_seen += 1
        seen = self.gap_seen
        known, sigma = self.gap, self.gap_mad * MAD_TO_SIGMA
        error = gap - known if seen > 1 else 0.0
        size = error if error >= 0 else -error
        predicted, spread = x, math.inf
        if seen > REFERENCE_WARMUP and sigma > 0:
            predicted = _box_cox(self._grown(reference, known), self.power, self.lowest)
            spread = _box_cox(self._grown(reference, known + sigma), self.power, self.lowest) - predicted
        if seen <= REFERENCE_WARMUP:
            self.gap += (gap - known) / seen
            self.gap_mad += (size - self.gap_mad) / seen
        else:
            clip, reject = CLIP_Z * sigma, REJECT_Z * sigma
            weight = (
                1.0 if size <= clip else ((reject - size) / (reject - clip) * clip / size if size < reject else 0.0)
            )
            self.gap += REFERENCE_GAIN * weight * error
            if size <= BAND_Z * sigma:
                self.gap_mad += REFERENCE_GAIN * (size - self.gap_mad)
        return (predicted, spread) if spread > 0 else (x, math.inf)

    def _grown(self, reference: float, gap: float) -> float:
        """The reference scaled by a growth: times e^gap for a ratio, plus gap for a difference."""
        return reference * math.exp(gap) if self.gap_ratio else reference + gap

    def _advance(self, index: int) -> tuple[float, float]:
        """Level and trend carried forward to `index`, over any missing points (`step` and `_forecast_error` carry
        them over the usual single step inline)."""
        level, trend = self.level, self.trend
        steps = index - self.index
        if steps > 0:
            if steps == 1:
                level += trend * TREND_DAMPING
                trend *= TREND_DAMPING
            else:
                damping = TREND_DAMPING**steps
                level += trend * TREND_DAMPING * (1 - damping) / (1 - TREND_DAMPING)
                trend *= damping
            self.index = index
        return level, trend

    def _returned(self, index: int, deseasonalised: float, size: float, half: float) -> bool:
        """Whether an out-of-band point is back at the level from before the last adopted shift (no alert)."""
        previous = self.previous_level
        if previous is None or index > self.previous_until:
            self.previous_level = None
            return False
        if size <= half or not -half <= deseasonalised - previous <= half:
            self.returning = 0
            return False
        self.returning += 1
        if self.returning >= RETURN_RUN:
            self.level, self.trend, self.previous_level, self.drift = previous, 0.0, None, 0.0
            self.recent.clear()
        return True

    def _watch_shift(self, index: int, side: int) -> None:
        """Adopt a new level once SHIFT_RUN of the last SHIFT_WINDOW points (`recent`, the newest an extreme one on
        `side`) are extreme on the same side."""
        recent = self.recent
        same = [entry for entry in recent if entry[0] == side]
        if len(same) < SHIFT_RUN:
            return
        self.previous_level = same[0][2]
        self.previous_until = index + self.memory
        self.returning = 0
        self.level = _median([entry[1] for entry in same])
        self.trend = 0.0
        self.drift = 0.0
        self.square = 1.0
        self.extreme_side = 0
        recent.clear()

    def _flat_surprise(self, raw: float) -> float:
        """Surprise of a run of repeated values (the point repeats the last one), from the history's repeat rate,
        until the flat-line is accepted.

        A count's run of zeros is the count tail's to judge (zeros are a
        sparse series' normal), not a stuck sensor.
        """
        self.repeats += 1
        if self.both and self.flat_run <= self.repeats < FLAT_ADOPT * self.flat_run and not (self.count and raw == 0):
            return -self.repeats * math.log(self.flat_rate)
        return 0.0


def _slope(indices: list[int], values: list[float], period: int, mean_index: float, mean_value: float) -> float:
    """Trend per step: least squares without a season; with one, the change between the first and the last cycle.

    A least-squares line through a seasonal series is biased by the season
    itself; whole-cycle means are not. Under two cycles the two can't be told
    apart and the trend is taken as flat. The indices are in order, so the
    first and the last cycle are a prefix and a suffix.
    """
    if period == 1:
        spread = sum((i - mean_index) ** 2 for i in indices)
        return (
            sum((i - mean_index) * (v - mean_value) for i, v in zip(indices, values, strict=False)) / spread
            if spread
            else 0.0
        )
    last = indices[-1]
    if last - indices[0] + 1 < 2 * period:
        return 0.0
    first = bisect_left(indices, indices[0] + period)
    final = bisect_right(indices, last - period)
    count = len(indices)
    run = sum(indices[final:]) / (count - final) - sum(indices[:first]) / first
    rise = sum(values[final:]) / (count - final) - sum(values[:first]) / first
    return rise / run


def _interval(times: list[float]) -> float:
    """The sampling interval: the median gap, snapped to a round interval when it is close to one."""
    gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b > a]
    if not gaps:
        return 1.0
    gap = _median(gaps)
    nearest = min(ROUND_INTERVALS, key=lambda r: abs(r - gap))
    return float(nearest) if abs(nearest - gap) <= SNAP_TOLERANCE * nearest else gap


def _difference_sigma(values: list[float]) -> float:
    """Noise σ from first differences: robust to level, trend and smooth seasons."""
    steps = list(map(abs, map(operator.sub, values[1:], values)))
    return MEDIAN_TO_SIGMA * _median(steps) / math.sqrt(2) if steps else 0.0


def _regular(indices: list[int], values: list[float]) -> list[float]:
    """The history (grid indices in order, values) on a regular grid, gaps filled linearly, for autocorrelation."""
    if indices == list(range(indices[0], indices[0] + len(indices))):
        return list(values)
    grid: list[float] = []
    previous_index, previous_value = None, 0.0
    for index, v in zip(indices, values, strict=False):
        if previous_index is not None:
            if index <= previous_index:
                continue
            gap = index - previous_index
            for k in range(1, gap):
                grid.append(previous_value + (v - previous_value) * k / gap)
        grid.append(v)
        previous_index, previous_value = index, v
    return grid


def _autocorrelation(series: list[float], max_lag: int) -> list[float]:
    """Autocorrelation of the linearly detrended series, each lag scaled for its number of pairs.

    Computed through the power spectrum (a zero-padded FFT), so a two-day history of minutes costs
    O(n log n) rather than a sum over every pair at every lag. Padding to count + max_lag keeps every lag
    asked for free of wrap-around; the rest of a doubled length would only serve lags nobody reads.
    """
    count = len(series)
    mean_index = (count - 1) / 2
    mean_value = sum(series) / count
    spread = sum((i - mean_index) ** 2 for i in range(count))
    slope = sum((i - mean_index) * (v - mean_value) for i, v in enumerate(series)) / spread
    centred = [v - mean_value - slope * (i - mean_index) for i, v in enumerate(series)]
    variance = sum(map(operator.mul, centred, centred))
    if variance <= 0:
        return [0.0] * (max_lag + 1)
    size = 2
    while size < count + max_lag + 1:
        size <<= 1
    spectrum = _fft([complex(v) for v in centred] + [0j] * (size - count), _twiddles(size, False), count, size)
    power = list(map(operator.mul, spectrum, map(complex.conjugate, spectrum)))
    back = _fft(power, _twiddles(size, True), size, min(size, max_lag + 1))
    return [
        back[lag].real / size * count / ((count - lag) * variance) if lag < count else 0.0 for lag in range(max_lag + 1)
    ]


@cache
def _twiddles(size: int, inverse: bool) -> tuple[complex, ...]:
    """e^(-2πik/size) for k < size/2, the FFT's rotations, conjugated for the inverse; kept per size, as every
    selection transforms histories of the same few lengths."""
    rotations = [cmath.exp(-2j * math.pi * k / size) for k in range(size // 2)]
    return tuple(w.conjugate() for w in rotations) if inverse else tuple(rotations)


def _fft(values: list[complex], twiddles: tuple[complex, ...], filled: int, wanted: int) -> list[complex]:
    """Radix-2 FFT (length a power of two) with the rotations of its full size; conjugate them to invert (unscaled).

    Stockham's form of the even/odd split, a whole stage at a time: block r of a stage holds the transform of
    values[r::blocks], so a stage is a few list-wide maps instead of thousands of recursive calls, and every output
    is the same sums and products (in the same order) as the recursive textbook form's, bit for bit.

    Only the first `filled` values may be non-zero and only the first `wanted` outputs are returned right (the rest
    are 0): with the upper half of the input zero, the first stage's sums and differences are copies of the lower
    half; and once a stage's blocks are longer than `wanted`, every later stage reads only their first `wanted`
    entries, so only those are computed.
    """
    size = len(values)
    half = size // 2
    current = list(values)
    width = 1
    while width < size:
        blocks = half // width
        stride = blocks
        merged: list[complex] = [0j] * size
        if 2 * width > wanted:
            kept = min(width, wanted)
            rotations = twiddles[: kept * stride : stride]
            for r in range(blocks):
                start = r * width
                even = current[start : start + kept]
                odd = current[half + start : half + start + kept]
                if width > 1:
                    odd = list(map(operator.mul, rotations, odd))
                merged[2 * start : 2 * start + kept] = map(operator.add, even, odd)
                if wanted > width:
                    extra = wanted - width
                    merged[2 * start + width : 2 * start + wanted] = map(operator.sub, even[:extra], odd[:extra])
            current = merged
            width *= 2
            continue
        even, odd = current[:half], current[half:]
        if width == 1 and filled <= half:
            sums = differences = even
        else:
            if width > 1:
                odd = list(map(operator.mul, twiddles[:half:stride] * blocks, odd))
            sums = list(map(operator.add, even, odd))
            differences = list(map(operator.sub, even, odd))
        if width < blocks:
            step = 2 * width
            for k in range(width):
                merged[k::step] = sums[k::width]
                merged[width + k :: step] = differences[k::width]
        else:
            for r in range(blocks):
                start = r * width
                merged[2 * start : 2 * start + width] = sums[start : start + width]
                merged[2 * start + width : 2 * start + 2 * width] = differences[start : start + width]
        current = merged
        width *= 2
    return current


def _calendar_periods(dt: float) -> list[int]:
    """A day and a week in points, where the sampling interval divides them (nearly) evenly."""
    periods = []
    for span in (DAY, WEEK):
        points = span / dt
        lag = round(points)
        if MIN_PERIOD <= lag <= MAX_PERIOD and abs(points - lag) <= CALENDAR_TOLERANCE * points:
            periods.append(lag)
    return periods


def _season_candidates(grid: list[float], dt: float) -> tuple[list[int], list[int]]:
    """Periods worth trying: calendar cycles that fit twice, and the strongest other autocorrelation peak."""
    max_lag = min(MAX_PERIOD, len(grid) // 2)
    if max_lag < MIN_PERIOD + 1:
        return [], []
    calendar = [lag for lag in _calendar_periods(dt) if lag <= max_lag]
    acf = _autocorrelation(grid, max_lag + 1)
    peaks = [
        lag
        for lag in range(MIN_PERIOD, max_lag + 1)
        if acf[lag] >= ACF_MIN and acf[lag] >= acf[lag - 1] and acf[lag] >= acf[lag + 1]
    ]
    if not peaks:
        return calendar, []
    best = max(acf[lag] for lag in peaks)
    first = next(lag for lag in peaks if acf[lag] >= 0.9 * best)
    if any(abs(first - c) <= CALENDAR_NEIGHBOURHOOD * c for c in calendar):
        return calendar, []
    return calendar, [first]


def _forecast_error(indices: list[int], shaped: list[float], fitted: _Model, alpha: float, cap: float) -> float:
    """Mean one-step error (each capped, so anomalies don't decide) on the later half of the history, from a model
    fitted on the earlier half; the history as grid indices and transformed values, computed once for every
    candidate.

    The fitted model is left as it is: the candidate with level smoothing `alpha` learns each point as `_Model.step`
    does (its spread and learning, and a run of SHIFT_RUN points beyond BAND_Z σ moving the level to them), written
    out here on local variables because model selection runs this loop for every point of every candidate.
    """
    half = len(shaped) // 2
    period, power, count, floor = fitted.period, fitted.power, fitted.count, fitted.floor
    beta = alpha * TREND_GAIN
    seasonal_model = period > 1
    season, phase_mads, seen_by_phase = list(fitted.season), list(fitted.phase_mad), list(fitted.seen)
    level, trend, last, mad = fitted.level, fitted.trend, fitted.index, fitted.mad
    run = 0
    run_values: list[float] = []
    mean = total = 0.0
    for index, x in zip(indices[half:], shaped[half:], strict=False):
        if index == last + 1:
            level += trend * TREND_DAMPING
            trend *= TREND_DAMPING
            last = index
        elif index > last:
            damping = TREND_DAMPING ** (index - last)
            level += trend * TREND_DAMPING * (1 - damping) / (1 - TREND_DAMPING)
            trend *= damping
            last = index
        phase = index % period
        seasonal = season[phase]
        expected = level + seasonal
        residual = x - expected
        spread = mad
        if seasonal_model:
            phase_mad = phase_mads[phase]
            if phase_mad > spread:
                spread = phase_mad
        sigma = spread * MAD_TO_SIGMA
        if sigma < floor:
            sigma = floor
        if count:
            mean = fitted.inverse(expected) if power != 1.0 else expected
            if mean < COUNT_MIN_MEAN:
                mean = COUNT_MIN_MEAN
            counting = math.sqrt(mean) if power == 1.0 else math.sqrt(mean) * mean ** (power - 1.0)
            if counting > sigma:
                sigma = counting
        clip = CLIP_Z * sigma
        reject = REJECT_Z * sigma
        if count:
            slack = COUNT_SLACK if power == 1.0 else COUNT_SLACK * mean ** (power - 1.0)
            clip += slack
            reject += 2 * slack
        size = residual if residual >= 0 else -residual
        if size <= clip:
            clipped = residual
        else:
            weight = (reject - size) / (reject - clip) if size < reject else 0.0
            clipped = clip * weight if residual > 0 else -clip * weight
        level += alpha * clipped
        trend += beta * clipped
        if seasonal_model:
            seen = seen_by_phase[phase] + 1
            seen_by_phase[phase] = seen
            season[phase] = seasonal + (SEASON_GAIN if seen * SEASON_GAIN >= 1 else 1 / seen) * clipped
            phase_mad = phase_mads[phase]
            phase_mads[phase] = phase_mad + PHASE_SPREAD_GAIN * ((size if size < clip else clip) - phase_mad)
        if size <= BAND_Z * sigma:
            mad += SPREAD_GAIN * (size - mad)
            run = 0
        else:
            side = 1 if residual > 0 else -1
            if run * side <= 0:
                run, run_values = side, [x - seasonal]
            else:
                run += side
                run_values.append(x - seasonal)
                if run * side >= SHIFT_RUN:
                    level, trend, run = _median(run_values), 0.0, 0
        total += size if size < cap else cap
    return total / max(1, len(shaped) - half)


def _power(values: list[float]) -> float:
    """The Box-Cox power that makes the history's step-to-step changes most homogeneous (profile likelihood, with a
    trimmed mean absolute change for their scale)."""
    if min(values) <= 0:
        return 1.0
    logs = sum(map(math.log, values))
    best, chosen = -math.inf, 1.0
    for power in POWERS:
        sigma = _step_scale(_box_cox_all(values, power, 0.0))
        if sigma <= 0:
            return 1.0
        likelihood = -len(values) * math.log(sigma) + (power - 1) * logs
        if likelihood > best:
            best, chosen = likelihood, power
    return chosen


def _step_scale(values: list[float]) -> float:
    """Mean absolute step-to-step change, its largest POWER_TRIM share left out: the spikes a series habitually
    has count (they decide between a raw and a log scale), a few anomalies in the history do not."""
    steps = sorted(map(abs, map(operator.sub, values[1:], values)))
    kept = steps[: max(1, len(steps) - int(POWER_TRIM * len(steps)))]
    return sum(kept) / len(kept) if kept else 0.0


def _template_correction(period: int, count: int) -> float:
    """How much a season learnt from few cycles inflates the error, relative to a settled one.

    A template averaged over c cycles carries σ²/c of noise into every
    forecast; settled, it carries SEASON_GAIN / (2 - SEASON_GAIN) σ².
    Dividing it out keeps a short history from ruling a season out.
    """
    if period == 1:
        return 1.0
    cycles = max(1, (count // 2) // period)
    settled = SEASON_GAIN / (2 - SEASON_GAIN)
    return math.sqrt((1 + settled) / (1 + 1 / cycles))


def _select(times: list[float], values: list[float], config: DetectorConfig) -> tuple[_Model, _Model]:
    """Choose season and level smoothing on the history, then fit the model to all of it.

    Returns the model and, for `_seed`, the chosen candidate as fitted to the earlier half of the history.
    """
    t0 = times[0]
    dt = _interval(times)
    power = _power(values)
    lowest = TRANSFORM_FLOOR * _median(values)
    count, dispersion = _is_count(values)
    shape = (power, lowest, count, dispersion)
    shaped = _box_cox_all(values, power, lowest)
    cap = SELECTION_CAP_Z * max(_difference_sigma(shaped), 1e-12)
    indices = [round((t - t0) / dt) for t in times]

    half = len(values) // 2
    earlier = _history(indices[:half], shaped[:half])
    fitted: dict[int, _Model] = {}
    errors: dict[tuple[int, float], float] = {}

    def error(p: int, a: float) -> float:
        if (p, a) not in errors:
            if p not in fitted:
                fitted[p] = _Model(t0, dt, p, a, config.direction, *shape)
                fitted[p].fit(earlier)
            errors[p, a] = _forecast_error(indices, shaped, fitted[p], a, cap)
        return errors[p, a]

    if config.period is not None:
        period = max(1, config.period)
    else:
        calendar, other = _season_candidates(_regular(indices, shaped), dt)

        def merit(p: int) -> float:
            return error(p, SELECTION_ALPHA) * (_template_correction(p, len(values)) if p in calendar else 1.0)

        period = min((1, *calendar, *other), key=merit)
    alpha = min(ALPHAS, key=lambda a: error(period, a))
    model = _Model(t0, dt, period, alpha, config.direction, *shape)
    model.fit(_history(indices, shaped))
    rehearsal = fitted[period]
    rehearsal.alpha, rehearsal.beta = alpha, alpha * TREND_GAIN
    return model, rehearsal


def _seed(model: _Model, rehearsal: _Model, times: list[float], values: list[float]) -> None:
    """Fill a new model's window of surprises from its own history: fitted on the earlier half (`rehearsal`, the
    model's candidate as `_select` fitted it there), judging the later."""
    half = len(values) // 2
    if half < 2:
        return
    rehearsal.freedom = model.freedom
    for t, x in zip(times[half:], values[half:], strict=False):
        rehearsal.step(t, x)
    model.inherit(rehearsal)


def _checkpoints(model: _Model, history: int, config: DetectorConfig) -> list[int]:
    """History lengths at which a calendar season first fits twice, so the season is chosen again."""
    if config.period is not None:
        return []
    return [2 * lag + 1 for lag in _calendar_periods(model.dt) if 2 * lag + 1 > history]


class Detector:
    """Scores one metric series point by point; keep one per series."""

    __slots__ = (
        "config",
        "_times",
        "_values",
        "_model",
        "_checkpoints",
        "_gain",
        "_band",
        "_last",
        "_baselined",
        "_edges",
        "_edges_tail",
        "_edges_version",
    )

    def __init__(self, config: DetectorConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self._times: list[float] = []
        self._values: list[float] = []
        self._model: _Model | None = None
        self._checkpoints: list[int] = []
        self._gain = sensitivity_gain(config.sensitivity)
        self._band = -REMINDER_DECADES * math.log(10) / self._gain
        """ln of the one-sided probability at the band's edges: where a point alone reaches the reminder score."""
        self._last = -math.inf
        self._baselined = False
        self._edges = (0.0, 0.0)
        """The band's half-widths below and above the expected value, in σ, as of `_edges_tail` at `_edges_version`."""
        self._edges_tail: Tail | None = None
        self._edges_version = -1

    def _warm_up(self, timestamp: float, value: float) -> None:
        """Keep the history until the model can be chosen, then choose it; keep it on until the season has been
        chosen with every calendar cycle that can fit (see `_choose_again`)."""
        if self._times and timestamp <= self._times[-1]:
            return
        self._times.append(timestamp)
        self._values.append(value)
        count = len(self._values)
        if count >= max(2, self.config.min_history):
            self._model, rehearsal = _select(self._times, self._values, self.config)
            _seed(self._model, rehearsal, self._times, self._values)
            self._checkpoints = _checkpoints(self._model, count, self.config)
            if not self._checkpoints:
                self._times, self._values = [], []

    def _choose_again(self) -> None:
        """Choose the season again on the history kept so far (it has reached the next checkpoint)."""
        previous = self._model
        self._model = _select(self._times, self._values, self.config)[0]
        if previous is not None:
            self._model.inherit(previous)
        self._checkpoints.pop(0)
        if not self._checkpoints:
            self._times, self._values = [], []

    def update(self, timestamp: float, value: float, baseline: float | None = None) -> Assessment:
        """Judge a point (timestamps in seconds) and learn from it; NaN is judged as missing.

        A point whose timestamp is not after the last one learnt (a late or
        repeated row of an export) is judged against the model as it stands
        and not learnt. `baseline` is optional: the same moment of an
        earlier period (the baseline campaign's value on this campaign's
        clock, 同期). A point that the baseline, scaled by the growth learnt
        so far, explains better than the model (a midnight spike that also
        happened last year) is judged against the baseline instead.
        """
        model = self._model
        if model is None:
            if math.isfinite(value):
                self._warm_up(timestamp, value)
                self._last = max(self._last, timestamp)
            return WARMING_UP
        if not math.isfinite(value):
            expected, sigma = model.forecast(timestamp)
            surprise = 0.0
        elif timestamp <= self._last:
            expected, sigma, surprise = model.judge(timestamp, value)
        else:
            self._last = timestamp
            reference = baseline if baseline is not None and math.isfinite(baseline) else None
            if reference is not None:
                self._baselined = True
            elif not self._baselined and self._checkpoints:
                reference = self._yesterday(model, timestamp)
            expected, sigma, surprise = model.step(timestamp, value, reference)
            checkpoints = self._checkpoints
            if checkpoints:
                times = self._times
                times.append(timestamp)
                self._values.append(value)
                if len(times) >= checkpoints[0]:
                    self._choose_again()
        # The verdict on the series' scale (of the model that judged the point); the band's edges are where the
        # point alone would score 0.5. Built for every point, so `score_of` is skipped for a surprise that scores
        # 0, the Box-Cox inverse (`_Model.inverse`) is written out, and the tuple is built without the named
        # tuple's Python-level constructor.
        tail = model.tail
        if tail.version != self._edges_version or tail is not self._edges_tail:
            self._edges = self._edges_of(tail)
            self._edges_tail, self._edges_version = tail, tail.version
        below_edge, above_edge = self._edges
        lower = expected - below_edge * sigma
        upper = expected + above_edge * sigma
        surprise *= self._gain
        score = 0.0 if surprise <= QUIET_SURPRISE else score_of(surprise)
        power = model.power
        if power == 1.0:
            return tuple.__new__(Assessment, (score, expected, lower, upper, True))
        if power == 0.0:
            return tuple.__new__(
                Assessment,
                (
                    score,
                    math.exp(EXP_CAP if expected > EXP_CAP else expected),
                    math.exp(EXP_CAP if lower > EXP_CAP else lower),
                    math.exp(EXP_CAP if upper > EXP_CAP else upper),
                    True,
                ),
            )
        exponent = 1 / power
        expected, lower, upper = power * expected + 1, power * lower + 1, power * upper + 1
        return tuple.__new__(
            Assessment,
            (
                score,
                expected**exponent if expected > 0 else 0.0,
                lower**exponent if lower > 0 else 0.0,
                upper**exponent if upper > 0 else 0.0,
                True,
            ),
        )

    def _yesterday(self, model: _Model, timestamp: float) -> float | None:
        """The value a day earlier, from the history kept until the daily season can be chosen, while it isn't.

        Between one and two days of history the model cannot have a daily
        season yet, but yesterday is there: it serves as the baseline (同期)
        so a burst that came at this time yesterday (a midnight rush) is no
        surprise the second time.
        """
        day = round(DAY / model.dt)
        if model.period == day or not self._times:
            return None
        times = self._times
        moment = timestamp - DAY
        index = bisect_left(times, moment - 0.5 * model.dt)
        if index < len(times) and abs(times[index] - moment) <= 0.5 * model.dt:
            return self._values[index]
        return None

    def _edges_of(self, tail: Tail) -> tuple[float, float]:
        """The band's half-widths below and above the expected value, in σ, for the window of surprises as it is."""
        above = tail.surprise_for(self._band, True)
        below = tail.surprise_for(self._band, False)
        return normal_quantile(below) if below > LN2 else 0.0, normal_quantile(above) if above > LN2 else 0.0


def score_series(
    timestamps: Iterable[float], values: Iterable[float], config: DetectorConfig = DEFAULT_CONFIG
) -> list[Assessment]:
    """Run a fresh detector over a whole series."""
    detector = Detector(config)
    return [detector.update(t, v) for t, v in zip(timestamps, values, strict=False)]
