"""Tail probabilities and the score mapping the dynamic detector uses."""

from __future__ import annotations

import math
import random

from alerts.evaluation.surprise import Tail, count_surprise, normal_surprise, score_of, surprise_at

LN10 = math.log(10)


def test_the_score_maps_probabilities_monotonically_and_keeps_them_apart() -> None:
    assert score_of(-math.log(0.02)) == 0.0, "p ≥ 1e-2 is inside the band"
    assert abs(score_of(5 * LN10) - 0.5) < 1e-12, "the reminder tier sits at p = 1e-5"
    decades = [2.5 + 0.1 * k for k in range(476)]
    scores = [score_of(d * LN10) for d in decades]
    assert scores == sorted(scores) and len({f"{s:.6f}" for s in scores}) == len(scores)
    assert score_of(math.inf) < 1.0 and f"{score_of(300 * LN10):.6f}" != "1.000000"
    for tier in (0.5, 0.75, 0.95):
        assert abs(score_of(surprise_at(tier)) - tier) < 1e-12


def test_normal_surprise_is_continuous_and_never_infinite() -> None:
    assert abs(normal_surprise(0.0) - math.log(2)) < 1e-12
    assert abs(normal_surprise(7.999999) - normal_surprise(8.0)) < 1e-3
    assert math.isfinite(normal_surprise(1e6))


def test_count_tails_match_a_direct_sum() -> None:
    mean = 3.0
    pmf = [math.exp(-mean) * mean**k / math.factorial(k) for k in range(60)]
    assert abs(count_surprise(7.0, mean, mean) - -math.log(sum(pmf[7:]))) < 1e-6
    assert abs(count_surprise(0.0, mean, mean) - mean) < 1e-9
    assert abs(count_surprise(1.0, 40.0, 40.0) - -math.log(math.exp(-40) * 41)) < 1e-6
    assert count_surprise(12.0, 3.0, 12.0) < count_surprise(12.0, 3.0, 3.0), "over-dispersion widens the tail"
    assert count_surprise(1.0, 0.25, 0.25) < math.log(10), "a 1 where 0.25 is expected is no news"


def test_a_variance_beyond_all_proportion_to_the_mean_is_no_surprise_rather_than_an_error() -> None:
    """Seen feeding a sparse series a baseline: mean/variance below 1e-16 makes the success probability 1.0."""
    assert count_surprise(5.0, 1e-9, 1e8) == 0.0
    assert count_surprise(5.0, 3.0, 1e17) == 0.0


def test_the_tail_learns_a_recurring_surprise_and_extrapolates_beyond_the_largest() -> None:
    rng = random.Random(1)
    tail = Tail()
    for i in range(1500):
        tail.add(30.0 + rng.random() if i % 50 == 0 else normal_surprise(abs(rng.gauss(0, 1))))
    assert tail.upper(30.5) > math.log(5e-3), "30 of 1500 were this surprising"
    assert tail.upper(60.0) < math.log(1e-10), "far beyond the largest seen"
    assert tail.lower(30.0) < math.log(1e-8), "nothing below the model was"
    ranks = [tail.upper(s) for s in (1.0, 5.0, 20.0, 31.0, 40.0)]
    assert ranks == sorted(ranks, reverse=True)
