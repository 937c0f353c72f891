"""How surprising an observation is: tail probabilities, their calibration, and the anomaly score.

A detector's model says how improbable a point is (a Gaussian tail for a
continuous residual, a Poisson or negative-binomial tail for a count). That
probability is only as good as the model, so it is recalibrated against the
series' own recent history: `Tail` keeps a bounded window of past surprises
and answers "how often did a point at least this surprising happen here?".
Recurring spikes of similar size therefore become ordinary, while a point
beyond everything in the window is judged by an exponential tail fitted to
the largest surprises seen, so a bigger spike still scores higher and scores
do not pile up at one value. The resulting probability is mapped to a score
in [0, 1) by `score_of`, the same mapping for every series, so one
threshold means the same rarity everywhere.

Surprises are in nats: s = -ln p. Pure arithmetic: no I/O, no clock.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right, insort

LN10 = math.log(10)
SQRT2 = math.sqrt(2)
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)

NORMAL_DECADES = 2.0
"""A point at least this probable (p ≥ 10^-2, one-sided) scores 0: it is inside the band."""
REMINDER_DECADES = 5.0
"""p = 10^-5 scores 0.5, the default reminder tier (提醒): on the development corpus's anomaly-free series the
calibrated probabilities reach 1e-4 a few times per 2,000 points (autocorrelated noise, a season still being
learnt), 1e-5 well under once."""
SCORE_SHAPE = 3.0
"""With x = (decades - 2) / 3, score = x³ / (1 + x³): 0.75 (warning, 警告) at p ≈ 5e-7, 0.8 at 2e-7, 0.95
(emergency, 紧急) at p ≈ 1e-10 (no orders in a minute that expects 23). Probabilities a tenth of a decade apart
print as different scores at 6 digits down to p ≈ 1e-50, and 1 - score stays above 5e-7 down to p ≈ 10^-380."""
MAX_SURPRISE = 1e4
"""Surprises are capped here (nats) so an infinite one still maps below 1."""
QUIET_SURPRISE = NORMAL_DECADES * LN10 * (1 - 1e-9)
"""At or below this surprise (nats) `score_of` is 0 whatever the rounding: a caller may skip calling it."""

TAIL_CAPACITY = 1500
"""Past surprises kept per series: enough for a spike every few hundred points to be learnt as normal."""
TAIL_TRIM = 1
"""The most extreme past surprise on each side is left out of the tail: one earlier incident is not yet a habit."""
TAIL_POINTS = 8
"""Below this many points beyond a surprise, a point's normal score comes from its calibrated probability."""
TAIL_GAPS = 4
"""The tail beyond the window's largest surprise decays by the median gap between its TAIL_GAPS + 1 largest."""
MIN_TAIL_SCALE = 1.0
"""The fitted tail decays no faster than the model's own (a calibrated model's surprises are Exp(1) distributed)."""
COUNT_TERMS = 60
"""Terms of a count's upper tail summed one by one; the rest is bounded by a geometric series."""
COUNT_PRECISION = 1e-7
"""A count's tail is summed until a term adds less than this share (surprises are exact to about 1e-7 nats)."""
PRIOR_WEIGHT = 60.0
"""Pseudo-points of trust in the model's own probability, so a short history is judged by the model."""
LN_PRIOR_WEIGHT = math.log(PRIOR_WEIGHT)


def score_of(surprise: float) -> float:
    """The anomaly score of a surprise in nats: 0 up to p = 1e-2, 0.5 at 1e-5, strictly increasing beyond."""
    decades = (MAX_SURPRISE if surprise > MAX_SURPRISE else surprise) / LN10
    if decades <= NORMAL_DECADES:
        return 0.0
    x = ((decades - NORMAL_DECADES) / (REMINDER_DECADES - NORMAL_DECADES)) ** SCORE_SHAPE
    return x / (1.0 + x)


def surprise_at(score: float) -> float:
    """The surprise (nats) at which `score_of` reaches `score` (0 < score < 1): its inverse."""
    x = (score / (1.0 - score)) ** (1.0 / SCORE_SHAPE)
    return LN10 * (NORMAL_DECADES + x * (REMINDER_DECADES - NORMAL_DECADES))


def normal_surprise(z: float) -> float:
    """-ln Q(z) for z ≥ 0, Q the standard normal upper tail; asymptotic beyond 8 so it never underflows."""
    if z < 8.0:
        return -math.log(0.5 * math.erfc(z / SQRT2))
    inverse = 1.0 / (z * z)
    return 0.5 * z * z + math.log(z) + LOG_SQRT_2PI - math.log1p(-inverse + 3 * inverse * inverse)


def normal_quantile(surprise: float) -> float:
    """z with Q(z) = e^-surprise (surprise ≥ ln 2), Abramowitz-Stegun 26.2.23 (error < 5e-4 in z)."""
    t = math.sqrt(2.0 * surprise)
    return t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1.0 + t * (1.432788 + t * (0.189269 + 0.001308 * t)))


def count_surprise(count: float, mean: float, variance: float) -> float:
    """-ln P(X ≥ count) above the mean, -ln P(X ≤ count) below it, X Poisson or negative binomial.

    The negative binomial has the given mean and variance; a variance at or
    below the mean means Poisson. `count` is a whole number ≥ 0 and the
    mean is positive. Terms are summed from `count` outwards, so a tail of
    1e-300 keeps its precision. A variance so far above the mean that the
    success probability rounds to 1 leaves a tail no sum bounds: no surprise.
    """
    k = count
    if variance <= mean * 1.000001:
        log_pmf = k * math.log(mean) - mean - math.lgamma(k + 1.0)
        shape, keep = math.inf, 0.0
    else:
        keep = 1.0 - mean / variance
        shape = mean * mean / (variance - mean)
        log_pmf = (
            math.lgamma(k + shape)
            - math.lgamma(shape)
            - math.lgamma(k + 1.0)
            + shape * math.log(mean / variance)
            + k * math.log(keep)
        )
    total, term = 1.0, 1.0
    poisson = shape == math.inf
    if k >= mean:
        j = k
        for _ in range(COUNT_TERMS):
            ratio = mean / (j + 1.0) if poisson else (j + shape) / (j + 1.0) * keep
            term *= ratio
            total += term
            j += 1.0
            if term < COUNT_PRECISION * total:
                break
        else:
            bound = keep if shape < 1.0 else ratio
            total = total + term * bound / (1.0 - bound) if bound < 1.0 else math.inf
    else:
        j = k
        while j > 0.5:
            term *= j / mean if poisson else j / ((j - 1.0 + shape) * keep)
            total += term
            j -= 1.0
            if term < COUNT_PRECISION * total:
                break
    return max(0.0, -(log_pmf + math.log(total)))


class Tail:
    """A bounded window of signed surprises (+ above the model, - below) and calibrated tail probabilities from it.

    `upper(s)` is ln P(a point lands at least s nats above the model), from
    the share of the window that did, minus the single most extreme one;
    beyond the data an exponential tail fitted to the largest surprises
    takes over, decaying no faster than the model's own. The model's
    probability e^-s is blended in with PRIOR_WEIGHT pseudo-points, so a
    short window leans on the model. Inserting and expiring a point costs
    one binary search and one memmove of the sorted window.
    """

    __slots__ = ("ordered", "recent", "head", "capacity", "_up", "_down", "version", "_log_total")

    def __init__(self, capacity: int = TAIL_CAPACITY) -> None:
        self.ordered = array("d")
        self.recent = array("d")
        self.head = 0
        self.capacity = capacity
        self._up: tuple[float, float, float] | None = None
        self._down: tuple[float, float, float] | None = None
        self.version = 0
        """Counts changes to the tail fits (and every 32nd point while filling), for callers that cache from them."""
        self._log_total = LN_PRIOR_WEIGHT
        """ln(points in the window + PRIOR_WEIGHT), the blend's denominator."""

    def add(self, value: float) -> None:
        """Remember one signed surprise, forgetting the oldest once the window is full; a cached tail fit that the
        added or the expired surprise may have changed is dropped."""
        ordered, recent = self.ordered, self.recent
        expired = value
        if len(recent) < self.capacity:
            recent.append(value)
            if not len(recent) % 32:
                self.version += 1
            self._log_total = math.log(len(recent) + PRIOR_WEIGHT)
        else:
            head = self.head
            expired = recent[head]
            recent[head] = value
            head += 1
            self.head = head if head < self.capacity else 0
            del ordered[bisect_left(ordered, expired)]
        insort(ordered, value)
        up = self._up
        if up is not None and (expired >= up[2] or value >= up[2]):
            self._up = None
            self.version += 1
        down = self._down
        if down is not None and (expired <= -down[2] or value <= -down[2]):
            self._down = None
            self.version += 1

    def rank(self, value: float) -> float:
        """The share of the window below `value`, ties counted half (the mid-rank)."""
        ordered = self.ordered
        return 0.5 * (bisect_left(ordered, value) + bisect_right(ordered, value)) / len(ordered)

    def upper(self, surprise: float) -> float:
        """ln of the calibrated probability of a point at least `surprise` nats above the model."""
        ordered = self.ordered
        n = len(ordered)
        if n == 0:
            return -surprise
        index = bisect_left(ordered, surprise)
        count = float(n - index)
        if 0 < index < n:
            at, below = ordered[index], ordered[index - 1]
            if at > below:
                count += (at - surprise) / (at - below)
        count -= TAIL_TRIM
        if count >= 1.0:
            return self._blend(surprise, math.log(count))
        return self._beyond(surprise, count, self._up_fit())

    def lower(self, surprise: float) -> float:
        """ln of the calibrated probability of a point at least `surprise` nats below the model."""
        ordered = self.ordered
        n = len(ordered)
        if n == 0:
            return -surprise
        index = bisect_right(ordered, -surprise)
        count = float(index)
        if 0 < index < n:
            at, above = ordered[index - 1], ordered[index]
            if above > at:
                count += (-surprise - at) / (above - at)
        count -= TAIL_TRIM
        if count >= 1.0:
            return self._blend(surprise, math.log(count))
        return self._beyond(surprise, count, self._down_fit())

    def _beyond(self, surprise: float, count: float, tail: tuple[float, float, float] | None) -> float:
        """`_blend` for a surprise with fewer than one point of the window beyond it: the fitted tail's share."""
        if tail is None:
            if count <= 0.0:
                return -surprise
            return self._blend(surprise, math.log(count))
        anchor, scale, _ = tail
        return self._blend(surprise, -max(0.0, surprise - anchor) / scale)

    def _blend(self, surprise: float, log_empirical: float) -> float:
        """ln of the window's share at least this surprising (or the fitted tail beyond it), e^log_empirical out of
        the window's points, blended with the model's e^-surprise worth PRIOR_WEIGHT points (a log-sum-exp whose
        larger term is 1)."""
        b = LN_PRIOR_WEIGHT - surprise
        if log_empirical > b:
            return log_empirical + math.log(1.0 + math.exp(b - log_empirical)) - self._log_total
        return b + math.log(math.exp(log_empirical - b) + 1.0) - self._log_total

    def _up_fit(self) -> tuple[float, float, float] | None:
        """(anchor, scale, lowest value used) of the exponential tail above the window's data, cached."""
        if self._up is None:
            ordered = self.ordered
            n = len(ordered)
            lowest = n - 1 - TAIL_TRIM - TAIL_GAPS
            if lowest < 0 or ordered[lowest] <= 0:
                return None
            top = list(ordered[lowest : n - TAIL_TRIM])
            self._up = (top[-1], _scale(top), top[0])
        return self._up

    def _down_fit(self) -> tuple[float, float, float] | None:
        """(anchor, scale, lowest magnitude used) of the exponential tail below the window's data, cached."""
        if self._down is None:
            ordered = self.ordered
            highest = TAIL_TRIM + TAIL_GAPS
            if highest >= len(ordered) or ordered[highest] >= 0:
                return None
            top = [-v for v in ordered[TAIL_TRIM : highest + 1]]
            self._down = (top[0], _scale(top[::-1]), top[-1])
        return self._down

    def surprise_for(self, log_p: float, above: bool) -> float:
        """The surprise (nats) whose calibrated one-sided probability is about e^log_p: the band's edge.

        Within the data it is the window's quantile; beyond it, the larger of
        the fitted tail's and the model's own answer (within a factor of two
        of the blended probability, which is plenty for drawing a band).
        """
        ordered = self.ordered
        n = len(ordered)
        if n == 0:
            return -log_p
        total = n + PRIOR_WEIGHT
        prior = math.log(PRIOR_WEIGHT / total) - log_p
        wanted = math.exp(log_p) * total
        if wanted >= 1.0:
            index = min(n - 1, int(wanted) + TAIL_TRIM)
            return max(0.0, ordered[n - 1 - index] if above else -ordered[index])
        tail = self._up_fit() if above else self._down_fit()
        if tail is None:
            return prior
        anchor, scale, _ = tail
        return max(prior, anchor - scale * math.log(wanted))


def _scale(top: list[float]) -> float:
    """The exponential tail's scale beyond the largest surprises (ascending): the median gap between them, at least
    the model's own. A cluster of similar spikes has small gaps, so a spike well beyond it is improbable; the gap
    down to the bulk of the data does not count."""
    gaps = sorted(b - a for a, b in zip(top, top[1:], strict=False))
    middle = len(gaps) // 2
    gap = gaps[middle] if len(gaps) % 2 else 0.5 * (gaps[middle - 1] + gaps[middle])
    return gap if gap > MIN_TAIL_SCALE else MIN_TAIL_SCALE
