"""The default pack's dynamic rules, ``by: sku`` included, on the live path over a night of 500 long-tail SKUs.

The night is simulated (seeded) and fed to the metrics engine as the server feeds it; every few seconds of the
night the rules are judged through ``alerts/evaluation/judgement.py`` (engine → ``EngineView`` → ``Evaluator`` →
``Lifecycle``), exactly as the server's alert loop does on a live campaign. 500 long-tail SKUs sell 0–3 units a
minute in the shapes a real catalogue has (rare sales, a steady trickle, lumps, spells on and off, a fading
seller) beside three hot SKUs selling tens of orders a minute. A quiet night must page nobody; a night in which a
hot SKU stops selling must page about that SKU within a few minutes. The evaluation's cost is measured too: the
live loop judges every SKU several times a minute.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from alerts.evaluation.evaluate import Evaluator
from alerts.evaluation.judgement import judge
from alerts.evaluation.lifecycle import Lifecycle, Transition
from alerts.evaluation.rules import DynamicRule, load_directory
from app.campaigns.model import Campaign, Phase, Phases, Sku
from app.metrics.engine import Engine
from app.metrics.measures import Event

ROOT = Path(__file__).resolve().parent.parent
DYNAMIC = [rule for rule in load_directory(ROOT / "rules").rules if isinstance(rule, DynamicRule)]
SKU_RULE = next(rule.name for rule in DYNAMIC if rule.by == "sku")
SEED = 20261111
LONG_TAIL = 500
SHAPES = ("rare", "trickle", "lumpy", "spells", "fading")
"""How the long-tail SKUs sell, one shape per SKU in turn (see ``LongTail.units``)."""
MAX_UNITS = 3
HOT: tuple[tuple[str, str, str, float], ...] = (
    ("HOT-1", "Aurora X1 phone", "极光X1手机", 20.0),
    ("HOT-2", "Robot vacuum", "扫地机器人", 35.0),
    ("HOT-3", "Down jacket", "羽绒服", 50.0),
)
"""Hot SKUs: id, names, paid orders a minute on average."""
STOPPED = "HOT-1"
NIGHT_MIN = 150
STOP_MIN = 100
"""The minute of the night at which ``STOPPED`` stops selling (its listing taken down, say) for the rest of it."""
CATCH_S = 180.0
EVALUATE_EVERY_S = 15
"""The server evaluates after each metrics update, at most five times a second; every 15 s is a slow loop."""
MAX_SERIES_US = 100.0
"""Budget for judging one SKU's series once (every rule of the pack's dynamic ones), the lifecycle included."""
MAX_WARM_UP_MS = 10.0
"""Budget per series for the one evaluation in which every series ends its warm-up and fits its model at once."""
START = datetime(2026, 11, 11, 0, 30, tzinfo=UTC)
"""Half an hour into the burst: past the midnight rush, a night that should be quiet."""
CAMPAIGN = Campaign(
    id="skunight",
    name="Double 11 long tail",
    phases=Phases(
        preheat=Phase(START - timedelta(days=1), START - timedelta(minutes=30)),
        burst=Phase(START - timedelta(minutes=30), START + timedelta(days=1)),
        wrapup=Phase(START + timedelta(days=1), START + timedelta(days=2)),
    ),
    skus=[
        *(Sku(sku=sku, name=name, name_zh=name_zh, price=999) for sku, name, name_zh, _ in HOT),
        *(Sku(sku=f"LT-{i:03d}", name=f"Long-tail item {i}", price=59) for i in range(LONG_TAIL)),
    ],
)


def shape_of(sku: str) -> str:
    return SHAPES[int(sku.removeprefix("LT-")) % len(SHAPES)] if sku.startswith("LT-") else "hot"


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; the means here are small or moderate)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


@dataclass
class LongTail:
    """One long-tail SKU's sales: ``units(minute)`` gives the orders of that minute as their unit counts."""

    sku: str
    rng: random.Random
    rate: float = 0.0
    selling: bool = True
    spell_left: int = 0

    def __post_init__(self) -> None:
        shape = shape_of(self.sku)
        self.rate = {
            "rare": self.rng.uniform(0.02, 0.2),
            "trickle": self.rng.uniform(0.5, 1.5),
            "lumpy": self.rng.uniform(0.05, 0.2),
            "spells": self.rng.uniform(1.0, 2.0),
            "fading": self.rng.uniform(1.0, 2.0),
        }[shape]

    def units(self, minute: int) -> list[int]:
        rng, shape = self.rng, shape_of(self.sku)
        if shape == "lumpy":
            return [rng.randint(2, MAX_UNITS)] if rng.random() < self.rate else []
        if shape == "spells":
            if self.spell_left <= 0:
                self.selling = not self.selling
                self.spell_left = rng.randint(5, 20) if self.selling else rng.randint(5, 30)
            self.spell_left -= 1
            if not self.selling:
                return []
        rate = self.rate * math.exp(-minute / 60) if shape == "fading" else self.rate
        return [1] * min(MAX_UNITS, poisson(rng, rate))


@dataclass
class Night:
    """What the pack's dynamic rules did: every transition, and the CPU time each evaluation took (CPU, not wall
    time: the machine running the tests is shared)."""

    transitions: list[Transition] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    series: int = 0

    def pages(self) -> list[tuple[str, str | None, str, float, dict]]:
        """(rule, SKU, its shape, minute of the night, values) of every alert that fired."""
        return [
            (
                t.alert.rule,
                t.alert.labels.get("sku"),
                shape_of(t.alert.labels.get("sku") or ""),
                round((t.at - START.timestamp()) / 60, 2),
                {k: v for k, v in t.values.items() if k in ("value", "expected", "lower", "upper", "score")},
            )
            for t in self.transitions
            if t.kind == "firing"
        ]


def night(stop: bool) -> Night:
    """The night judged by the pack's dynamic rules every ``EVALUATE_EVERY_S`` seconds; with ``stop``,
    ``STOPPED`` sells nothing from ``STOP_MIN`` on."""
    rng = random.Random(SEED)
    tails = [LongTail(f"LT-{i:03d}", random.Random(rng.random())) for i in range(LONG_TAIL)]
    engine, seq, orders = Engine([CAMPAIGN]), itertools.count(1), itertools.count(1)
    evaluator, lifecycle, result = Evaluator(DYNAMIC), Lifecycle(), Night()
    origin = START.timestamp()

    def order(sku: str, units: int, at: float, price: int) -> Event:
        number = next(orders)
        return Event(
            next(seq), "order_paid", at, CAMPAIGN.id, "tmall", f"u{number}", None, f"o{number}", sku, units,
            Decimal(price * units), None, None, None, None,
        )  # fmt: skip

    for minute in range(NIGHT_MIN):
        sales: list[tuple[str, int, int]] = []
        for sku, _, _, mean in HOT:
            if stop and sku == STOPPED and minute >= STOP_MIN:
                continue
            wave = 1 + 0.2 * math.sin(2 * math.pi * minute / 90)
            sales += [(sku, 1, 999)] * poisson(rng, mean * wave)
        for tail in tails:
            sales += [(tail.sku, units, 59) for units in tail.units(minute)]
        events = sorted((origin + minute * 60 + rng.uniform(0, 60), sku, units, price) for sku, units, price in sales)
        for offset in range(0, 60, EVALUATE_EVERY_S):
            wall = origin + minute * 60 + offset + EVALUATE_EVERY_S
            due = [e for e in events if e[0] < wall]
            events = events[len(due) :]
            engine.apply([order(sku, units, at, price) for at, sku, units, price in due])
            started = time.thread_time()
            observations, transitions = judge(engine, CAMPAIGN.id, wall, evaluator, lifecycle)
            result.seconds.append(time.thread_time() - started)
            result.series = max(result.series, len(observations))
            result.transitions += transitions
    return result


@pytest.fixture(scope="module")
def quiet() -> Night:
    return night(stop=False)


@pytest.fixture(scope="module")
def stopped() -> Night:
    return night(stop=True)


def test_the_pack_watches_every_sku_with_a_dynamic_rule(quiet):
    assert quiet.series == len(CAMPAIGN.skus) + 1, "one series per SKU, and the paid GMV"


def test_a_quiet_night_of_500_long_tail_skus_pages_nobody(quiet):
    assert quiet.pages() == []


def test_a_hot_sku_that_stops_selling_is_paged_within_minutes_and_nothing_else_is(stopped):
    pages = stopped.pages()
    caught = [p for p in pages if p[0] == SKU_RULE and p[1] == STOPPED]
    assert caught and 0 <= caught[0][3] - STOP_MIN <= CATCH_S / 60, pages
    assert len(caught) == 1, "one incident, one page"
    others = [p for p in pages if p[1] != STOPPED and not (p[0] == "gmv_anomaly" and p[3] >= STOP_MIN)]
    assert others == [], "only the stopped SKU (and the paid GMV it takes with it) may page"


def test_judging_500_skus_stays_cheap_in_the_live_loop(quiet, stopped):
    evaluations = quiet.seconds + stopped.seconds
    mean_s = sum(evaluations) / len(evaluations)
    per_series_us = mean_s / quiet.series * 1e6
    print(
        f"\n{quiet.series} series: {mean_s * 1000:.2f} ms of CPU per evaluation on average "
        f"({per_series_us:.1f} µs per series), max {max(evaluations) * 1000:.1f} ms, "
        f"over {len(evaluations)} evaluations"
    )
    assert per_series_us <= MAX_SERIES_US
    assert max(evaluations) * 1000 / quiet.series <= MAX_WARM_UP_MS
