"""NAB-style evaluation of the dynamic-threshold detector against classic baselines.

Real NAB data cannot be downloaded here (no internet), and no installable
package ships real labelled anomaly series, so the corpus is synthetic:
seeded, deterministic series that mimic NAB's categories (traffic sensors,
ad-exchange prices, machine and ambient temperature, taxi demand, cloud CPU,
network and latency, artificial jumps and flat-lines) plus promotion-like
order series whose scheduled bursts recur daily and are not anomalies.

Scoring follows NAB v1.1: windows of 10% of a series' length shared by its
anomalies and centred on each onset, a probationary first 15% (at most 750
rows) that is not scored, the scaled sigmoid for the first detection in a
window and for false positives after a window, the standard,
reward_low_FP_rate and reward_low_FN_rate profiles, one threshold per
detector and profile optimised over the whole scored set, and normalisation
so the null detector scores 0 and a perfect one 100.

The corpus is split: `dev` (seeds 0-5 of seven families, used while
designing the detector) and `holdout` (seeds 1000-1005 of all ten families,
including three families never looked at during design: taxi, latency,
ambient_temp; "unseen" scores those alone). Held-out numbers use the
thresholds learned on `dev` as well as thresholds optimised on the held-out
set itself. `dynamic+likelihood` is an ablation: the detector's scores
passed through HTM's anomaly likelihood.

    .venv/bin/python -m bench.detector_eval [--json] [--split all|dev|holdout] [--detector NAME]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.evaluation.detectors import DEFAULT_CONFIG, score_series

WINDOW_FRACTION = 0.10
PROBATION_FRACTION = 0.15
PROBATION_MAX = 750
PROFILES: dict[str, dict[str, float]] = {
    "standard": {"tp": 1.0, "fp": 0.11, "fn": 1.0},
    "reward_low_FP_rate": {"tp": 1.0, "fp": 0.22, "fn": 1.0},
    "reward_low_FN_rate": {"tp": 1.0, "fp": 0.11, "fn": 2.0},
}
GAUSSIAN_WINDOW = 6400
GAUSSIAN_STEP = 100
EWMA_ALPHA = 0.05
EWMA_WARMUP = 10
LIKELIHOOD_SHORT = 10
LIKELIHOOD_LONG = 8640
LIKELIHOOD_LEARNING = 288
LIKELIHOOD_MIN_STD = 1e-3
"""HTM's anomaly-likelihood settings: a 10-point average of raw scores against the mean and std of the last 8640."""
DEV_SEEDS = (0, 1, 2, 3, 4, 5)
HOLDOUT_SEEDS = (1000, 1001, 1002, 1003, 1004, 1005)
DEV_FAMILIES = ("traffic", "adexchange", "machine_temp", "cpu", "network", "artificial", "promo")
HOLDOUT_ONLY_FAMILIES = ("taxi", "latency", "ambient_temp")
QUIET_FAMILIES = ("traffic", "cpu", "promo", "taxi")
"""Families that also get a series without any anomaly per seed set (only false positives can score there)."""
EPOCH = 1_699_920_000
"""A UTC midnight (2023-11-14) that the synthetic clocks start from."""
DAY = 86400
BACKTEST_ROWS = 400_000


@dataclass
class Series:
    name: str
    family: str
    split: str
    times: list[float]
    values: list[float]
    onsets: list[int]


def _bump(hour: float, centre: float, width: float) -> float:
    distance = min(abs(hour - centre), 24 - abs(hour - centre))
    return math.exp(-0.5 * (distance / width) ** 2)


def _shopping_day(hour: float) -> float:
    """Relative activity over a day for consumer traffic: night trough, lunch and evening peaks."""
    return 0.12 + 0.45 * _bump(hour, 12.5, 2.5) + 0.9 * _bump(hour, 20.5, 2.0) + 0.25 * _bump(hour, 9.0, 1.5)


def _counts(rng: random.Random, mean: float, dispersion: float = 1.0) -> float:
    if mean <= 0:
        return 0.0
    if mean < 30:
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= rng.random()
            if p <= limit:
                return float(k)
            k += 1
    return float(max(0, round(mean + dispersion * math.sqrt(mean) * rng.gauss(0, 1))))


def _clock(rng: random.Random, n: int, dt: float, jitter: float = 0.0, drop: float = 0.0) -> list[float]:
    start = EPOCH + DAY * rng.randrange(0, 200)
    times = []
    for i in range(n):
        if drop and rng.random() < drop:
            continue
        times.append(start + i * dt + (rng.uniform(-jitter, jitter) if jitter else 0.0))
    return times


def _onsets(rng: random.Random, n: int, count: int) -> list[int]:
    """Anomaly onsets after the probationary stretch, far enough apart for their windows not to touch."""
    if count == 0:
        return []
    gap = int(1.3 * WINDOW_FRACTION * n / count)
    for _ in range(1000):
        picks = sorted(rng.randrange(int(0.2 * n), int(0.93 * n)) for _ in range(count))
        if all(b - a >= gap for a, b in zip(picks, picks[1:], strict=False)):
            return picks
    return [int(0.2 * n + k * 0.7 * n / count) for k in range(count)]


def _hour(t: float) -> float:
    return (t % DAY) / 3600.0


def _weekday(t: float) -> int:
    return int((t // DAY) + 3) % 7


def _ramp(i: int, start: int, length: int, rise: int = 3) -> float:
    """0 before `start`, 1 over [start, start+length), with short linear edges."""
    if i < start or i >= start + length + rise:
        return 0.0
    if i < start + rise:
        return (i - start + 1) / (rise + 1)
    if i >= start + length:
        return 1 - (i - start - length + 1) / (rise + 1)
    return 1.0


def gen_traffic(rng: random.Random, count: int) -> tuple[list[float], list[float], list[int]]:
    """Road-sensor speed (realTraffic): rush-hour dips on weekdays, jittered and missing timestamps."""
    n = rng.randrange(2300, 2700)
    times = _clock(rng, n, 300, jitter=20, drop=0.03)
    onsets = _onsets(rng, len(times), count)
    base = rng.uniform(55, 70)
    values = []
    blip = 0
    for t in times:
        h = _hour(t)
        weekday = _weekday(t) < 5
        depth = (22 * _bump(h, 8, 1.0) + 28 * _bump(h, 17.5, 1.3)) * (1.0 if weekday else 0.3)
        if blip == 0 and rng.random() < 0.01:
            blip = rng.randrange(1, 4)
        dip = rng.uniform(8, 18) if blip else 0.0
        blip = max(0, blip - 1)
        values.append(base - depth - dip + rng.gauss(0, 2.5))
    for onset in onsets:
        kind = rng.choice(("incident", "incident", "glitch"))
        length = rng.randrange(8, 30) if kind == "incident" else rng.randrange(3, 10)
        level = rng.uniform(12, 25) if kind == "incident" else rng.choice((0.0, base * 1.6))
        for i in range(onset, min(len(values), onset + length + 3)):
            w = _ramp(i, onset, length)
            values[i] = (1 - w) * values[i] + w * (level + rng.gauss(0, 2))
    return times, values, onsets


def gen_adexchange(rng: random.Random, count: int) -> tuple[list[float], list[float], list[int]]:
    """Hourly cost-per-click (realAdExchange): daily and weekly shape, multiplicative heavy noise."""
    n = rng.randrange(1500, 1800)
    times = _clock(rng, n, 3600, drop=0.02)
    onsets = _onsets(rng, len(times), count)
    base = rng.uniform(0.5, 1.5)
    values = []
    for t in times:
        shape = 0.7 + 0.5 * _bump(_hour(t), 19, 3.5)
        week = 0.8 if _weekday(t) >= 5 else 1.0
        spike = rng.uniform(1.4, 2.0) if rng.random() < 0.01 else 1.0
        values.append(base * shape * week * spike * math.exp(rng.gauss(0, 0.12)))
    for onset in onsets:
        kind = rng.choice(("surge", "collapse", "shift"))
        if kind == "shift":
            factor = rng.choice((1.7, 0.55))
            for i in range(onset, len(values)):
                values[i] *= factor
            continue
        length = rng.randrange(3, 12)
        factor = rng.uniform(2.5, 4.0) if kind == "surge" else rng.uniform(0.15, 0.35)
        for i in range(onset, min(len(values), onset + length)):
            values[i] *= factor
    return times, values, onsets


def gen_machine_temp(rng: random.Random, count: int) -> tuple[list[float], list[float], list[int]]:
    """Industrial machine temperature (realKnownCause): autocorrelated wander, shutdowns, a failure after a slow
    drift up."""
    n = rng.randrange(3800, 4600)
    times = _clock(rng, n, 300)
    onsets = _onsets(rng, n, count)
    level = rng.uniform(80, 95)
    anchor = level
    values = []
    deviation = 0.0
    for _ in range(n):
        anchor += rng.gauss(0, 0.05)
        deviation = 0.97 * deviation + rng.gauss(0, 0.6)
        values.append(anchor + deviation)
    for onset in onsets:
        kind = rng.choice(("shutdown", "failure", "oscillation"))
        if kind == "shutdown":
            floor, length = rng.uniform(20, 45), rng.randrange(60, 220)
            for i in range(onset, min(n, onset + length + 40)):
                w = min(1.0, (i - onset + 1) / 12) if i < onset + length else max(0.0, 1 - (i - onset - length) / 40)
                values[i] = (1 - w) * values[i] + w * (floor + rng.gauss(0, 1.0))
        elif kind == "failure":
            length, rise = rng.randrange(80, 200), rng.uniform(8, 15)
            for i in range(max(0, onset - length), onset):
                values[i] += rise * (i - onset + length) / length
            for i in range(onset, min(n, onset + 30)):
                values[i] = rng.uniform(30, 45)
        else:
            for i in range(onset, min(n, onset + rng.randrange(60, 140))):
                values[i] += rng.gauss(0, 6)
    return times, values, onsets


def gen_ambient_temp(rng: random.Random, count: int) -> tuple[list[float], list[float], list[int]]:
    """Office temperature (realKnownCause): daily cycle on drifting weather, HVAC failures."""
    n = rng.randrange(2800, 3400)
    times = _clock(rng, n, 3600)
    onsets = _onsets(rng, n, count)
    weather = rng.uniform(66, 74)
    values = []
    for t in times:
        weather += rng.gauss(0, 0.15) - 0.01 * (weather - 70)
        office = 1.2 if _weekday(t) < 5 else 0.4
        values.append(
            weather
            + 2.5 * math.sin(2 * math.pi * (_hour(t) - 9) / 24)
            + office * _bump(_hour(t), 14, 3)
            + rng.gauss(0, 0.6)
        )
    for onset in onsets:
        change, length = rng.choice((1, -1)) * rng.uniform(5, 10), rng.randrange(18, 48)
        for i in range(onset, min(n, onset + length + 6)):
            values[i] += change * _ramp(i, onset, length, rise=5)
    return times, values, onsets


def gen_taxi(rng: random.Random, count: int) -> tuple[list[float], list[float], list[int]]:
    """Half-hourly taxi passengers (NYC taxi): daily and weekly shape, holidays, a marathon, a blizzard."""
    n = rng.randrange(3300, 3700)
    times = _clock(rng, n, 1800)
    onsets = _onsets(rng, n, count)
    base = rng.uniform(12000, 18000)
    values = []
    for t in times:
        h, weekend = _hour(t), _weekday(t) >= 5
        shape = (
            0.15 + 0.7 * _bump(h, 8.5, 1.5) + 0.9 * _bump(h, 19, 3)
            if not weekend
            else 0.35 + 0.8 * _bump(h, 14, 4) + 0.5 * _bump(h, 1, 2)
        )
        values.append(_counts(rng, base * shape, dispersion=4))
    for onset in onsets:
        kind = rng.choice(("holiday", "marathon", "blizzard"))
        if kind == "holiday":
            for i in range(onset, min(n, onset + 48)):
                values[i] = 0.55 * values[i] + 0.1 * base
        elif kind == "marathon":
            for i in range(onset, min(n, onset + 14)):
                values[i] *= 0.6 if i < onset + 10 else 1.4
        else:
            for i in range(onset, min(n, onset + rng.randrange(24, 40))):
                values[i] *= 0.12
    return times, values, onsets


def gen_cpu(rng: random.Random, count: int) -> tuple[list[float], list[float], list[int]]:
    """EC2 CPU utilisation (realAWSCloudwatch): noisy plateau, lone spikes, a nightly batch job on some hosts."""
    n = 4032
    times = _clock(rng, n, 300)
    onsets = _onsets(rng, n, count)
    base = rng.uniform(15, 45)
    batch = rng.random() < 0.5
    values = []
    deviation = 0.0
    for t in times:
        deviation = 0.8 * deviation + rng.gauss(0, 1.5)
        spike = rng.uniform(8, 20) if rng.random() < 0.005 else 0.0
        job = 30.0 if batch and 2.0 <= _hour(t) < 2.5 else 0.0
        values.append(min(100.0, max(0.0, base + deviation + spike + job)))
    for onset in onsets:
        kind = rng.choice(("level_up", "saturation", "drop"))
        if kind == "level_up":
            lift = rng.uniform(12, 30)
            for i in range(onset, n):
                values[i] = min(100.0, values[i] + lift)
        else:
            length = rng.randrange(10, 40) if kind == "saturation" else rng.randrange(10, 60)
            for i in range(onset, min(n, onset + length)):
                values[i] = rng.uniform(94, 100) if kind == "saturation" else rng.uniform(0, 3)
    return times, values, onsets


def gen_network(rng: random.Random, count: int) -> tuple[list[float], list[float], list[int]]:
    """Network bytes in (realAWSCloudwatch): daily shape with lognormal, bursty noise."""
    n = 4032
    times = _clock(rng, n, 300)
    onsets = _onsets(rng, n, count)
    base = rng.uniform(2e6, 8e6)
    values = [base * (0.4 + _shopping_day(_hour(t))) * math.exp(rng.gauss(0, 0.3)) for t in times]
    for onset in onsets:
        kind = rng.choice(("surge", "outage"))
        length = rng.randrange(20, 60) if kind == "surge" else rng.randrange(5, 30)
        for i in range(onset, min(n, onset + length)):
            values[i] = values[i] * rng.uniform(3.5, 5) if kind == "surge" else base * rng.uniform(0, 0.02)
    return times, values, onsets


def gen_latency(rng: random.Random, count: int) -> tuple[list[float], list[float], list[int]]:
    """Request latency (ec2_request_latency): gamma-distributed noise, lone spikes, degradations."""
    n = 4032
    times = _clock(rng, n, 300)
    onsets = _onsets(rng, n, count)
    base = rng.uniform(30, 60)
    values = []
    for _ in times:
        spike = rng.uniform(2, 3.5) if rng.random() < 0.01 else 1.0
        values.append((base + rng.gammavariate(2, 3)) * spike)
    for onset in onsets:
        kind = rng.choice(("degradation", "jitter"))
        for i in range(onset, min(n, onset + rng.randrange(30, 120))):
            values[i] = (
                values[i] * rng.uniform(1.7, 2.0) if kind == "degradation" else values[i] + abs(rng.gauss(0, 35))
            )
    return times, values, onsets


def gen_artificial(rng: random.Random, count: int) -> tuple[list[float], list[float], list[int]]:
    """Artificial daily pattern (artificialWithAnomaly): jumps up or down, a flat middle, a missing peak."""
    n = 4032
    times = _clock(rng, n, 300)
    onsets = _onsets(rng, n, count)
    low, high, noise = rng.uniform(15, 25), rng.uniform(60, 85), rng.uniform(1, 4)
    values = [
        low + (high - low) * (0.5 + 0.5 * math.tanh(3 * math.sin(2 * math.pi * _hour(t) / 24))) + rng.gauss(0, noise)
        for t in times
    ]
    for onset in onsets:
        kind = rng.choice(("jumpsup", "jumpsdown", "flatmiddle", "nojump"))
        length = rng.randrange(60, 150)
        for i in range(onset, min(n, onset + length)):
            if kind == "jumpsup":
                values[i] += 0.6 * (high - low)
            elif kind == "jumpsdown":
                values[i] -= 0.6 * (high - low) * (values[i] - low) / (high - low)
            elif kind == "flatmiddle":
                values[i] = round(0.5 * (low + high), 1)
            else:
                values[i] = low + rng.gauss(0, noise)
    return times, values, onsets


def gen_promo(rng: random.Random, count: int) -> tuple[list[float], list[float], list[int]]:
    """Orders per 5 minutes during a promotion: daily shape with a midnight burst and a 20:00 flash sale every day."""
    n = rng.randrange(3600, 4300)
    times = _clock(rng, n, 300, drop=0.01)
    onsets = _onsets(rng, n, count)
    base = rng.uniform(150, 600)
    burst = rng.uniform(3, 5)

    def expected(t: float) -> float:
        h = _hour(t)
        minutes = (t % DAY) / 60.0
        midnight = burst * math.exp(-minutes / 12) if minutes < 45 else 0.0
        flash = 1.8 if 20 * 60 <= minutes < 20 * 60 + 30 else 0.0
        return base * (_shopping_day(h) + midnight + flash)

    values = [_counts(rng, expected(t) * rng.uniform(0.93, 1.07)) for t in times]
    for k, onset in enumerate(onsets):
        kind = rng.choice(("double_burst", "collapse", "brushing"))
        if kind == "double_burst":
            day_start = times[onset] - times[onset] % DAY
            onset = onsets[k] = next(
                (i for i in range(onset, len(times)) if times[i] >= day_start + DAY), len(times) - 1
            )
            end = onset
            while end < len(times) and times[end] < times[onset] + 45 * 60:
                values[end] = _counts(rng, 2 * expected(times[end]))
                end += 1
        elif kind == "collapse":
            for i in range(onset, min(len(values), onset + rng.randrange(6, 18))):
                values[i] = _counts(rng, 0.05 * expected(times[i]))
        else:
            for i in range(onset, min(len(values), onset + rng.randrange(6, 12))):
                values[i] += _counts(rng, 2.5 * base)
    return times, values, onsets


GENERATORS: dict[str, Callable[[random.Random, int], tuple[list[float], list[float], list[int]]]] = {
    "traffic": gen_traffic,
    "adexchange": gen_adexchange,
    "machine_temp": gen_machine_temp,
    "ambient_temp": gen_ambient_temp,
    "taxi": gen_taxi,
    "cpu": gen_cpu,
    "network": gen_network,
    "latency": gen_latency,
    "artificial": gen_artificial,
    "promo": gen_promo,
}


def build_corpus() -> list[Series]:
    """Every series of both splits, generated deterministically from family name and seed."""
    corpus = []
    plan = [("dev", DEV_SEEDS, DEV_FAMILIES), ("holdout", HOLDOUT_SEEDS, DEV_FAMILIES + HOLDOUT_ONLY_FAMILIES)]
    for split, seeds, families in plan:
        for family in families:
            for seed in seeds:
                rng = random.Random(f"{family}/{seed}")
                times, values, onsets = GENERATORS[family](rng, rng.randrange(1, 5))
                corpus.append(Series(f"{family}_{seed}", family, split, times, values, onsets))
        for family in QUIET_FAMILIES:
            if split == "dev" and family not in DEV_FAMILIES:
                continue
            rng = random.Random(f"{family}/quiet/{seeds[0]}")
            times, values, _ = GENERATORS[family](rng, 0)
            corpus.append(Series(f"{family}_quiet_{seeds[0]}", family, split, times, values, []))
    return corpus


def write_csv(series: Series, folder: Path) -> Path:
    path = folder / f"{series.name}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("timestamp", "value"))
        writer.writerows((f"{t:.3f}", repr(v)) for t, v in zip(series.times, series.values, strict=False))
    return path


def read_csv(path: Path) -> tuple[list[float], list[float]]:
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        times, values = [], []
        for t, v in reader:
            times.append(float(t))
            values.append(float(v))
    return times, values


def normal_tail(z: float) -> float:
    """Q(z): probability that a standard normal exceeds z."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def windowed_gaussian(times: list[float], values: list[float]) -> list[float]:
    """NAB's windowedGaussian: 1 - tail probability against the mean and std of a 6400-point window stepped by 100."""
    scores = []
    window: list[float] = []
    step: list[float] = []
    mean, std = 0.0, 1.0
    total = squares = 0.0
    for x in values:
        if not math.isfinite(x):
            scores.append(0.0)
            continue
        scores.append(1 - normal_tail(abs(x - mean) / std) if window else 0.0)
        if len(window) < GAUSSIAN_WINDOW:
            window.append(x)
            total += x
            squares += x * x
        else:
            step.append(x)
            if len(step) < GAUSSIAN_STEP:
                continue
            for old in window[:GAUSSIAN_STEP]:
                total -= old
                squares -= old * old
            for new in step:
                total += new
                squares += new * new
            window = window[GAUSSIAN_STEP:] + step
            step = []
        count = len(window)
        mean = total / count
        std = math.sqrt(max(0.0, squares / count - mean * mean)) or 0.000001
    return scores


def ewma_zscore(times: list[float], values: list[float]) -> list[float]:
    """Plain exponentially weighted mean and variance; the score is |z| / (1 + |z|)."""
    scores = []
    mean = variance = 0.0
    seen = 0
    for x in values:
        if not math.isfinite(x):
            scores.append(0.0)
            continue
        if seen == 0:
            mean = x
        deviation = x - mean
        z = abs(deviation) / math.sqrt(variance) if variance > 0 else 0.0
        scores.append(z / (1 + z) if seen >= EWMA_WARMUP else 0.0)
        mean += EWMA_ALPHA * deviation
        variance = (1 - EWMA_ALPHA) * (variance + EWMA_ALPHA * deviation * deviation)
        seen += 1
    return scores


def null_detector(times: list[float], values: list[float]) -> list[float]:
    return [0.5] * len(values)


def dynamic_threshold(times: list[float], values: list[float]) -> list[float]:
    return [a.score for a in score_series(times, values, DEFAULT_CONFIG)]


def anomaly_likelihood(raw: list[float]) -> list[float]:
    """HTM's post-processing: how unusual the short-term average of raw scores is against their long-term distribution.

    Returned on HTM's log scale, log(1.0000000001 - L) / log(1e-10), so
    likelihoods near 1 stay distinguishable.
    """
    out = []
    recent: list[float] = []
    history: list[float] = []
    total = squares = 0.0
    for score in raw:
        recent.append(score)
        if len(recent) > LIKELIHOOD_SHORT:
            recent.pop(0)
        average = sum(recent) / len(recent)
        if len(history) >= LIKELIHOOD_LEARNING:
            mean = total / len(history)
            std = max(LIKELIHOOD_MIN_STD, math.sqrt(max(0.0, squares / len(history) - mean * mean)))
            likelihood = 1 - normal_tail((average - mean) / std)
            out.append(math.log(1.0000000001 - likelihood) / math.log(1.0 - 0.9999999999))
        else:
            out.append(0.0)
        history.append(average)
        total += average
        squares += average * average
        if len(history) > LIKELIHOOD_LONG:
            old = history.pop(0)
            total -= old
            squares -= old * old
    return out


def dynamic_threshold_likelihood(times: list[float], values: list[float]) -> list[float]:
    """Ablation: the detector's scores passed through HTM's anomaly likelihood."""
    return anomaly_likelihood(dynamic_threshold(times, values))


DETECTORS: dict[str, Callable[[list[float], list[float]], list[float]]] = {
    "dynamic_threshold": dynamic_threshold,
    "dynamic+likelihood": dynamic_threshold_likelihood,
    "windowed_gaussian": windowed_gaussian,
    "ewma_zscore": ewma_zscore,
    "null": null_detector,
}


def scaled_sigmoid(position: float) -> float:
    """NAB's reward for a detection at `position` window-lengths relative to a window's end."""
    if position > 3.0:
        return -1.0
    return 2 / (1 + math.exp(5 * position)) - 1.0


MAX_TP = scaled_sigmoid(-1.0)


def windows(length: int, onsets: list[int]) -> list[tuple[int, int]]:
    """NAB windows: 10% of the rows shared by the anomalies, each centred on its onset."""
    if not onsets:
        return []
    size = int(WINDOW_FRACTION * length / len(onsets))
    merged: list[tuple[int, int]] = []
    for onset in sorted(onsets):
        start, end = max(0, onset - size // 2), min(length - 1, onset + size // 2)
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


@dataclass
class Row:
    score: float
    window: int
    """Global window id, or -1 outside every window."""
    weight: float
    """Within a window: the TP reward; outside: NAB's unweighted (negative) FP value."""


def sweep_rows(length: int, onsets: list[int], scores: list[float], window_base: int) -> tuple[list[Row], int]:
    """Each scorable row with what detecting it is worth; returns the rows and the number of windows."""
    spans = windows(length, onsets)
    probation = min(math.floor(PROBATION_FRACTION * length), PROBATION_MAX)
    rows = []
    current = 0
    previous: tuple[int, int] | None = None
    for i, score in enumerate(scores):
        while current < len(spans) and i > spans[current][1]:
            previous = spans[current]
            current += 1
        inside = current < len(spans) and spans[current][0] <= i <= spans[current][1]
        if inside:
            start, end = spans[current]
            reward = scaled_sigmoid(-(end - i + 1) / (end - start + 1)) / MAX_TP
            row = Row(score, window_base + current, reward)
        elif previous is None:
            row = Row(score, -1, -1.0)
        else:
            start, end = previous
            row = Row(score, -1, scaled_sigmoid(abs(end - i) / (end - start)))
        if i >= probation:
            rows.append(row)
    return rows, len(spans)


@dataclass
class Sweep:
    rows: list[Row]
    windows: int


def build_sweep(corpus: list[Series], scores: dict[str, list[float]]) -> Sweep:
    rows: list[Row] = []
    total = 0
    for series in corpus:
        series_rows, count = sweep_rows(len(series.values), series.onsets, scores[series.name], total)
        rows.extend(series_rows)
        total += count
    return Sweep(rows, total)


def raw_score(sweep: Sweep, threshold: float, profile: dict[str, float]) -> float:
    """NAB's raw score when every row scoring at least `threshold` is a detection."""
    best: dict[int, float] = {}
    fp = 0.0
    for row in sweep.rows:
        if row.score < threshold:
            continue
        if row.window < 0:
            fp += row.weight
        elif row.weight > best.get(row.window, -math.inf):
            best[row.window] = row.weight
    tp = sum(best.values()) * profile["tp"]
    return tp + fp * profile["fp"] - profile["fn"] * (sweep.windows - len(best))


def optimise(sweep: Sweep) -> dict[str, float]:
    """Best threshold per profile: sweeps every distinct score from high to low, as NAB's optimiser does."""
    ordered = sorted(sweep.rows, key=lambda r: -r.score)
    best_window: dict[int, float] = {}
    tp = fp = 0.0
    candidates = {name: (profile_total(0.0, 0.0, 0, sweep.windows, p), math.inf) for name, p in PROFILES.items()}
    i = 0
    while i < len(ordered):
        threshold = ordered[i].score
        while i < len(ordered) and ordered[i].score == threshold:
            row = ordered[i]
            if row.window < 0:
                fp += row.weight
            else:
                previous = best_window.get(row.window)
                if previous is None or row.weight > previous:
                    tp += row.weight - (previous or 0.0)
                    best_window[row.window] = row.weight
            i += 1
        for name, p in PROFILES.items():
            total = profile_total(tp, fp, len(best_window), sweep.windows, p)
            if total > candidates[name][0]:
                candidates[name] = (total, threshold)
    return {name: threshold for name, (_, threshold) in candidates.items()}


def profile_total(tp: float, fp: float, detected: int, windows_count: int, profile: dict[str, float]) -> float:
    return tp * profile["tp"] + fp * profile["fp"] - profile["fn"] * (windows_count - detected)


def normalised(sweep: Sweep, threshold: float, profile: dict[str, float]) -> float:
    """0 for the null detector, 100 for a detection at the start of every window and nothing else."""
    null = -profile["fn"] * sweep.windows
    perfect = profile["tp"] * sweep.windows
    return 100 * (raw_score(sweep, threshold, profile) - null) / (perfect - null)


def confusion(sweep: Sweep, threshold: float) -> dict[str, int]:
    detected = {row.window for row in sweep.rows if row.score >= threshold and row.window >= 0}
    false_positives = sum(1 for row in sweep.rows if row.score >= threshold and row.window < 0)
    return {"windows": sweep.windows, "detected": len(detected), "false_positive_rows": false_positives}


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def profile_scores(sweep: Sweep, thresholds: dict[str, float]) -> dict[str, Any]:
    """Normalised score per profile at the given thresholds, with the standard profile's counts."""
    result: dict[str, Any] = {
        profile: round(normalised(sweep, thresholds[profile], weights), 1) for profile, weights in PROFILES.items()
    }
    result["threshold"] = thresholds["standard"]
    result["standard_counts"] = confusion(sweep, thresholds["standard"])
    return result


def score_corpus(
    name: str, corpus: list[Series], paths: dict[str, Path]
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Run one detector over every series read back from CSV; returns the scores and the timings."""
    scores: dict[str, list[float]] = {}
    reading = detecting = 0.0
    rows = 0
    for series in corpus:
        tick = time.perf_counter()
        times, values = read_csv(paths[series.name])
        tock = time.perf_counter()
        scores[series.name] = DETECTORS[name](times, values)
        reading += tock - tick
        detecting += time.perf_counter() - tock
        rows += len(values)
    elapsed = reading + detecting
    progress(
        f"{name}: {rows} rows in {elapsed:.1f}s ({1e6 * detecting / rows:.1f} µs/update,"
        f" {1e6 * elapsed / rows:.1f} µs/row with CSV read)"
    )
    timing = {
        "us_per_update": round(1e6 * detecting / rows, 2),
        "us_per_row_with_csv": round(1e6 * elapsed / rows, 2),
        "seconds_per_400k_rows": round(BACKTEST_ROWS * elapsed / rows, 1),
    }
    return scores, timing


def run(split: str, detectors: Iterable[str]) -> dict[str, Any]:
    started = time.perf_counter()
    corpus = build_corpus()
    progress(
        f"corpus: {len(corpus)} series, {sum(len(s.values) for s in corpus)} rows"
        f" ({time.perf_counter() - started:.1f}s)"
    )
    sets = {
        "dev": [s for s in corpus if s.split == "dev"],
        "holdout": [s for s in corpus if s.split == "holdout"],
        "unseen": [s for s in corpus if s.split == "holdout" and s.family in HOLDOUT_ONLY_FAMILIES],
        "all": corpus,
    }
    wanted = ["dev", "holdout", "all"] if split == "all" else [split]
    scored = sets[split]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as folder:
        paths = {s.name: write_csv(s, Path(folder)) for s in scored}
        for name in detectors:
            scores, timing = score_corpus(name, scored, paths)
            entry: dict[str, Any] = dict(timing)
            sweeps = {key: build_sweep(sets[key], scores) for key in wanted}
            thresholds = {key: optimise(sweeps[key]) for key in wanted}
            for key in wanted:
                entry[key] = profile_scores(sweeps[key], thresholds[key])
            if split == "all":
                entry["holdout_at_dev_threshold"] = profile_scores(sweeps["holdout"], thresholds["dev"])
                entry["unseen_at_dev_threshold"] = profile_scores(
                    build_sweep(sets["unseen"], scores), thresholds["dev"]
                )
            entry["per_family"] = per_family(scored, scores, thresholds[wanted[-1]]["standard"])
            results[name] = entry
    return {
        "machine": (
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "series": {key: len(sets[key]) for key in ("dev", "holdout", "unseen")},
        "windows": {
            key: sum(len(windows(len(s.values), s.onsets)) for s in sets[key])
            for key in ("dev", "holdout", "unseen", "all")
        },
        "detectors": results,
        "seconds": round(time.perf_counter() - started, 1),
    }


def per_family(corpus: list[Series], scores: dict[str, list[float]], threshold: float) -> dict[str, str]:
    """Detected windows / windows and false-positive rows per family at one threshold."""
    summary: dict[str, list[int]] = {}
    for series in corpus:
        counts = confusion(build_sweep([series], scores), threshold)
        entry = summary.setdefault(series.family, [0, 0, 0])
        entry[0] += counts["detected"]
        entry[1] += counts["windows"]
        entry[2] += counts["false_positive_rows"]
    return {family: f"{d}/{w} windows, {fp} FP rows" for family, (d, w, fp) in sorted(summary.items())}


SET_LABELS = {
    "holdout_at_dev_threshold": "held-out (dev threshold)",
    "unseen_at_dev_threshold": "held-out unseen families",
    "holdout": "held-out (own threshold)",
    "dev": "dev (own threshold)",
    "all": "all (own threshold)",
}


def table(report: dict[str, Any]) -> str:
    lines = [
        f"machine: {report['machine']}; series {report['series']}; windows {report['windows']};"
        f" {report['seconds']}s total",
        "",
    ]
    header = f"{'detector':<20} {'set':<26} {'standard':>9} {'low_FP':>8} {'low_FN':>8}  detected/windows  FP rows"
    lines.append(header)
    lines.append("-" * len(header))
    for name, entry in report["detectors"].items():
        for key in ("holdout_at_dev_threshold", "unseen_at_dev_threshold", "holdout", "dev", "all"):
            if key not in entry:
                continue
            e = entry[key]
            counts = e["standard_counts"]
            label = SET_LABELS.get(key, key)
            lines.append(
                f"{name:<20} {label:<26} {e['standard']:>9.1f} {e['reward_low_FP_rate']:>8.1f}"
                f" {e['reward_low_FN_rate']:>8.1f}"
                f"  {counts['detected']:>7}/{counts['windows']:<8} {counts['false_positive_rows']:>7}"
            )
        lines.append(
            f"{'':<20} {entry['us_per_update']} µs/update; {entry['us_per_row_with_csv']} µs/row with CSV read"
            f" = {entry['seconds_per_400k_rows']} s per 400k rows"
        )
    lines.append("")
    for name, entry in report["detectors"].items():
        lines.append(f"{name} per family (standard profile, threshold optimised on the whole scored set):")
        for family, text in entry["per_family"].items():
            lines.append(f"  {family:<14} {text}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--split", choices=("all", "dev", "holdout"), default="all")
    parser.add_argument("--detector", action="append", choices=sorted(DETECTORS), help="only these detectors")
    args = parser.parse_args()
    report = run(args.split, args.detector or list(DETECTORS))
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else table(report))


if __name__ == "__main__":
    main()
