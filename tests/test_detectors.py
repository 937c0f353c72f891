"""The dynamic-threshold detector on small deterministic series."""

from __future__ import annotations

import math
import random
import time

import pytest

from alerts.evaluation.detectors import (
    DEFAULT_CONFIG,
    DEFAULT_MIN_HISTORY,
    Assessment,
    Detector,
    DetectorConfig,
    score_series,
)

MINUTE = 60.0
DAY = 86400.0
REMINDER = 0.5
"""The default reminder tier: a score below it pages nobody."""
START = 1_700_006_400.0
"""A UTC midnight."""


def noisy(
    count: int, seed: int = 7, base: float = 100.0, noise: float = 2.0, step: float = 5 * MINUTE
) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    return [START + i * step for i in range(count)], [base + rng.gauss(0, noise) for _ in range(count)]


def orders(days: int, seed: int = 11, burst: float = 300.0, per_day: int = 96) -> tuple[list[float], list[float]]:
    """Orders `per_day` times a day: a daily shape plus a sale burst in the first half hour after midnight."""
    rng = random.Random(seed)
    times, values = [], []
    for i in range(days * per_day):
        t = START + i * DAY / per_day
        hour = (t % DAY) / 3600
        shape = 100 + 40 * math.sin(2 * math.pi * (hour - 9) / 24)
        times.append(t)
        values.append(shape + (burst if hour < 0.5 else 0.0) + rng.gauss(0, 3))
    return times, values


def run(
    times: list[float], values: list[float], config: DetectorConfig = DEFAULT_CONFIG
) -> tuple[Detector, list[Assessment]]:
    detector = Detector(config)
    return detector, [detector.update(t, v) for t, v in zip(times, values, strict=False)]


def test_no_score_during_warm_up() -> None:
    times, values = noisy(DEFAULT_MIN_HISTORY + 50)
    values[100] = 10_000.0
    _, verdicts = run(times, values)
    warm = verdicts[: DEFAULT_MIN_HISTORY - 1]
    assert all(v.score == 0.0 and not v.ready and v.expected is None for v in warm)
    assert all(v.ready and v.expected is not None for v in verdicts[DEFAULT_MIN_HISTORY:])


@pytest.mark.parametrize("per_day", [96, 288])
def test_recurring_midnight_burst_is_normal_but_a_double_one_and_a_collapse_are_not(per_day: int) -> None:
    times, values = orders(days=12, per_day=per_day)
    _, verdicts = run(times, values)
    bursts = [i for i, t in enumerate(times) if (t % DAY) / 3600 < 0.5 and t >= START + 5 * DAY]
    assert bursts and max(verdicts[i].score for i in bursts) < REMINDER

    doubled = list(values)
    midnight = 11 * per_day
    doubled[midnight] += 300.0
    _, verdicts = run(times, doubled)
    assert verdicts[midnight].score > 0.5

    collapsed = list(values)
    afternoon = 10 * per_day + per_day // 2
    for i in range(afternoon, afternoon + per_day // 12):
        collapsed[i] *= 0.05
    _, verdicts = run(times, collapsed)
    assert verdicts[afternoon].score > 0.5


def test_level_shift_alerts_then_adapts() -> None:
    times, values = noisy(1500)
    shift = 1000
    for i in range(shift, len(values)):
        values[i] += 40.0
    _, verdicts = run(times, values)
    assert verdicts[shift].score > 0.5
    assert all(v.score < REMINDER for v in verdicts[shift + 30 :]), "adopted: the new level is normal"
    assert all(v.score < REMINDER for v in verdicts[DEFAULT_MIN_HISTORY:shift])


def test_direction_up_ignores_dips() -> None:
    times, values = noisy(600)
    values[500] -= 60.0
    values[550] += 60.0
    _, verdicts = run(times, values, DetectorConfig(direction="up"))
    assert verdicts[500].score == 0.0
    assert verdicts[550].score > 0.5
    _, verdicts = run(times, values, DetectorConfig(direction="down"))
    assert verdicts[500].score > 0.5
    assert verdicts[550].score == 0.0


def test_scores_stay_in_unit_interval_and_grow_with_the_deviation() -> None:
    times, values = noisy(500)
    previous = 0.0
    for size in (0.0, 5.0, 10.0, 20.0, 40.0, 80.0, 1e6):
        spiked = list(values)
        spiked[450] += size
        _, verdicts = run(times, spiked)
        assert all(0.0 <= v.score < 1.0 for v in verdicts)
        assert verdicts[450].score >= previous
        previous = verdicts[450].score
    assert previous > 0.95


def test_band_contains_expected_and_sensitivity_narrows_it() -> None:
    times, values = noisy(400)
    _, calm = run(times, values, DetectorConfig(sensitivity=0.0))
    _, keen = run(times, values, DetectorConfig(sensitivity=1.0))
    bands = []
    for verdict in (calm[-1], keen[-1]):
        assert verdict.lower is not None and verdict.expected is not None and verdict.upper is not None
        assert verdict.lower < verdict.expected < verdict.upper
        bands.append(verdict.upper - verdict.lower)
    assert bands[1] < bands[0]


def test_deterministic() -> None:
    times, values = orders(days=6)
    assert score_series(times, values) == score_series(times, values)


def test_score_series_matches_updates() -> None:
    times, values = noisy(400)
    assert score_series(times, values) == run(times, values)[1]


def test_nan_and_missing_points_are_tolerated() -> None:
    times, values = orders(days=8)
    keep = [i for i in range(len(times)) if not 300 <= i < 340]
    times = [times[i] for i in keep]
    values = [values[i] for i in keep]
    values[50] = math.nan
    values[400] = math.nan
    values[500] = math.inf
    _, verdicts = run(times, values)
    assert verdicts[400].score == 0.0 and verdicts[400].ready
    assert all(0.0 <= v.score <= 1.0 for v in verdicts)
    assert max(v.score for v in verdicts[450:]) < REMINDER


def test_irregular_timestamps() -> None:
    rng = random.Random(3)
    times, values = orders(days=8)
    jittered = [t + rng.uniform(-40, 40) for t in times]
    _, verdicts = run(jittered, values)
    assert max(v.score for v in verdicts[5 * 96 :]) < REMINDER


def test_flat_line_is_scored() -> None:
    times, values = noisy(800)
    for i in range(600, 800):
        values[i] = 100.0
    _, verdicts = run(times, values)
    assert max(v.score for v in verdicts[600:700]) > REMINDER
    assert max(v.score for v in verdicts[400:600]) < REMINDER


def test_explicit_period_and_constant_series() -> None:
    times, values = orders(days=5)
    _, verdicts = run(times, values, DetectorConfig(period=96))
    assert max(v.score for v in verdicts[4 * 96 :]) < REMINDER
    times = [START + i * MINUTE for i in range(400)]
    constant = [5.0] * 400
    constant[-1] = 6.0
    _, verdicts = run(times, constant)
    assert verdicts[-2].score == 0.0
    assert verdicts[-1].score > 0.5


@pytest.mark.timeout(60)
def test_fifty_thousand_updates_are_fast() -> None:
    times, values = orders(days=521)
    times, values = times[:50_000], values[:50_000]
    started = time.perf_counter()
    score_series(times, values)
    assert time.perf_counter() - started < 5.0


def campaign(days: int, growth: float, seed: int, spike: float) -> tuple[list[float], list[float]]:
    """Orders every 15 minutes with multiplicative noise; the last day opens with a midnight rush `spike` times
    normal."""
    rng = random.Random(seed)
    times, values = [], []
    for i in range(days * 96):
        t = START + i * 15 * MINUTE
        hour = (t % DAY) / 3600
        rush = spike if i >= (days - 1) * 96 and hour < 2 else 1.0
        times.append(t)
        values.append(
            growth * rush * (100 + 40 * math.sin(2 * math.pi * (hour - 9) / 24)) * math.exp(rng.gauss(0, 0.05))
        )
    return times, values


def test_a_baseline_campaign_explains_a_spike_it_also_had() -> None:
    times, this_year = campaign(days=12, growth=1.2, seed=1, spike=10.0)
    _, last_year = campaign(days=12, growth=1.0, seed=2, spike=10.0)
    opening = range(11 * 96, 11 * 96 + 8)
    _, alone = run(times, this_year)
    assert max(alone[i].score for i in opening) > 0.5

    detector = Detector()
    judged = [detector.update(t, v, b) for t, v, b in zip(times, this_year, last_year, strict=False)]
    assert max(judged[i].score for i in opening) < REMINDER
    assert all(v.score < REMINDER for v in judged[5 * 96 :])
    rush = judged[11 * 96 + 2]
    assert rush.lower is not None and rush.upper is not None and rush.lower < this_year[11 * 96 + 2] < rush.upper

    _, doubled = campaign(days=12, growth=1.2, seed=1, spike=20.0)
    detector = Detector()
    judged = [detector.update(t, v, b) for t, v, b in zip(times, doubled, last_year, strict=False)]
    assert judged[11 * 96].score > 0.5

    detector = Detector()
    judged = [detector.update(t, v, math.nan) for t, v in zip(times, this_year, strict=False)]
    assert judged == alone


def test_the_model_judges_while_the_baseline_is_still_warming_up() -> None:
    """A baseline that only starts arriving must not blind the detector until its growth is learnt."""
    times, values = noisy(400)
    values[320] = 300.0
    detector = Detector()
    judged = [
        detector.update(t, v, 100.0 if i >= 316 else None) for i, (t, v) in enumerate(zip(times, values, strict=False))
    ]
    assert judged[320].score > 0.5, "the 5th baseline value: the baseline cannot explain yet, the model must"


def poisson(rng: random.Random, mean: float) -> float:
    """A Poisson count (Knuth's method: the means here are small)."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return float(count)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_zero_heavy_count_series_stays_quiet(seed: int) -> None:
    """Orders of a long-tail SKU per minute: mostly 0, sometimes 1-3. A lone 1 after zeros is no incident."""
    rng = random.Random(seed)
    times = [START + i * MINUTE for i in range(3000)]
    values = [poisson(rng, 0.05 if i % 700 < 500 else 0.4) for i in range(3000)]
    _, verdicts = run(times, values)
    assert max(values) >= 2 and sum(1 for v in values if v > 0) > 100
    assert max(v.score for v in verdicts) < REMINDER
    lone = [i for i in range(DEFAULT_MIN_HISTORY, 3000) if values[i] == 1 and values[i - 20 : i] == [0.0] * 20]
    assert lone and all(verdicts[i].score < 0.2 for i in lone), "a 1 after twenty zeros is ordinary"


def test_zero_orders_where_forty_are_normal_is_an_emergency_and_a_few_more_are_not() -> None:
    rng = random.Random(5)
    times = [START + i * MINUTE for i in range(800)]
    values = [poisson(rng, 40.0) for _ in range(800)]
    values[700] = 0.0
    values[750] = 55.0
    _, verdicts = run(times, values)
    assert verdicts[700].score > 0.95, "P(X = 0 | 40) = 4e-18"
    assert verdicts[750].score < REMINDER, "55 where 40 are expected is counting noise (p ≈ 1e-2)"
    assert all(v.score < REMINDER for i, v in enumerate(verdicts[DEFAULT_MIN_HISTORY:700]))


def spike_train(count: int, seed: int) -> tuple[list[float], list[float]]:
    """Bytes written per 5 minutes: lognormal noise around 1e6 and a 10x spike every 50-150 points."""
    rng = random.Random(seed)
    values, next_spike = [], 60
    for i in range(count):
        value = 1e6 * math.exp(rng.gauss(0, 0.2))
        if i == next_spike:
            value *= rng.uniform(9, 11)
            next_spike = i + rng.randrange(50, 150)
        values.append(value)
    return [START + i * 5 * MINUTE for i in range(count)], values


def test_recurring_spikes_are_learnt_and_a_bigger_one_is_caught() -> None:
    times, values = spike_train(3000, seed=4)
    _, verdicts = run(times, values)
    spikes = [i for i in range(1500, 3000) if values[i] > 5e6]
    assert len(spikes) >= 10 and max(verdicts[i].score for i in spikes) < REMINDER, "10x spikes are this series' normal"
    bigger = list(values)
    quiet = next(i for i in range(2500, 3000) if values[i] < 2e6)
    bigger[quiet] = 1e8
    _, verdicts = run(times, bigger)
    assert verdicts[quiet].score > 0.75, "100x is beyond anything seen"
    dip = list(values)
    dip[quiet] = 1e4
    _, verdicts = run(times, dip)
    assert verdicts[quiet].score > 0.75, "spikes upwards teach nothing about a collapse"


def test_scores_do_not_pile_up_at_the_top() -> None:
    times, values = spike_train(4000, seed=6)
    _, verdicts = run(times, values)
    scores = [f"{v.score:.6f}" for v in verdicts[DEFAULT_MIN_HISTORY:] if v.score > 0.01]
    top = max(scores)
    assert scores.count(top) <= 3 and top < "1.000000"
    assert len(set(scores)) >= 0.9 * len(scores), "distinct probabilities print as distinct scores"


def test_the_score_comes_back_down_after_an_incident() -> None:
    times, values = noisy(1500, seed=9)
    for i in range(900, 960):
        values[i] = 40.0 + random.Random(i).gauss(0, 2)
    _, verdicts = run(times, values)
    assert verdicts[900].score > 0.95
    assert max(v.score for v in verdicts[975:]) < REMINDER, "back to normal soon after the incident ends"
    assert sum(v.score >= REMINDER for v in verdicts[900:960]) < 20, "an outage that lasts is adopted, not paged on"


def test_a_level_shift_is_caught_once_then_adopted_in_heavy_tailed_noise() -> None:
    times, values = spike_train(2500, seed=8)
    for i in range(1800, 2500):
        values[i] *= 3
    _, verdicts = run(times, values)
    assert max(v.score for v in verdicts[1800:1810]) > 0.75
    assert max(v.score for v in verdicts[1850:] if v.score > 0) < REMINDER


def test_a_late_row_is_judged_but_not_learnt() -> None:
    times, values = noisy(500, seed=3)
    _, reference = run(times, values)
    detector = Detector()
    judged = []
    for i, (t, v) in enumerate(zip(times, values, strict=False)):
        judged.append(detector.update(t, v))
        if i == 420:
            late = detector.update(times[410], 1_000.0)
            repeated = detector.update(t, v)
    assert late.score > 0.95 and repeated.score < REMINDER
    assert judged == reference, "the late and the repeated rows changed nothing"


def test_sensitivity_raises_and_lowers_the_same_deviation() -> None:
    times, values = noisy(500, seed=12)
    values[450] += 10.0
    scores = [run(times, values, DetectorConfig(sensitivity=s))[1][450].score for s in (0.0, 0.5, 1.0)]
    assert scores[0] < scores[1] < scores[2]
