"""The live metrics engine as rules see it: last year's same minute, and this year's pre-heat growth over last
year's."""

from __future__ import annotations

import itertools
from pathlib import Path

from alerts.evaluation.metricview import MIN_GROWTH_SPAN_S, EngineView
from app.campaigns.model import load_file
from app.metrics.engine import Engine
from app.metrics.measures import Event

ROOT = Path(__file__).resolve().parent.parent
THIS_YEAR = load_file(ROOT / "campaigns" / "double11-demo.yaml")
LAST_YEAR = load_file(ROOT / "campaigns" / "double11-2025.yaml")
OFFSET = THIS_YEAR.phases.burst.start.timestamp() - LAST_YEAR.phases.burst.start.timestamp()
"""This year's clock minus last year's: the same offset from the burst start."""
PRE_HEAT = THIS_YEAR.phases.preheat.start.timestamp()
_seq = itertools.count(1)


def visits(campaign: str, at: float, count: int) -> list[Event]:
    return [
        Event(next(_seq), "visit", at, campaign, "tmall", None, f"a{i}", None, None, None, None, None, None, None, None)
        for i in range(count)
    ]


def engine(*batches: list[Event]) -> Engine:
    built = Engine([THIS_YEAR, LAST_YEAR])
    for batch in batches:
        built.apply(batch)
    return built


def test_baseline_is_last_years_same_offset_from_the_burst():
    now = PRE_HEAT + 3600
    view = EngineView(
        engine(
            visits(LAST_YEAR.id, now - OFFSET - 30, 7),
            visits(LAST_YEAR.id, now - OFFSET - 90, 3),
            visits(THIS_YEAR.id, now - 30, 20),
        ),
        THIS_YEAR.id,
        now,
    )
    assert view.baseline(THIS_YEAR.id, "visits", now - 60, now, None, None) == 7
    assert view.baseline(THIS_YEAR.id, "visits", now - 120, now, "channel", "tmall") == 10
    assert view.baseline(LAST_YEAR.id, "visits", now - 60, now, None, None) is None, "last year has no baseline"


def test_growth_is_this_years_pre_heat_over_last_years_once_long_enough():
    history = visits(LAST_YEAR.id, PRE_HEAT - OFFSET + 10, 8)
    live = visits(THIS_YEAR.id, PRE_HEAT + 10, 10)
    assert (
        EngineView(engine(history, live), THIS_YEAR.id, PRE_HEAT + MIN_GROWTH_SPAN_S - 1).growth(THIS_YEAR.id, "visits")
        is None
    )
    assert (
        EngineView(engine(history, live), THIS_YEAR.id, PRE_HEAT + MIN_GROWTH_SPAN_S).growth(THIS_YEAR.id, "visits")
        == 1.25
    )


def test_point_in_time_metrics_have_no_baseline_or_growth():
    """Stock and pacing are read as they are now; a dynamic rule on them must not crash the alert loop."""
    now = PRE_HEAT + 3600
    view = EngineView(
        engine(visits(LAST_YEAR.id, now - OFFSET - 30, 7), visits(THIS_YEAR.id, now - 30, 20)), THIS_YEAR.id, now
    )
    for metric in ("stock_on_hand", "pct_of_target", "projected_pct"):
        assert view.baseline(THIS_YEAR.id, metric, now - 60, now, None, None) is None
        assert view.growth(THIS_YEAR.id, metric) is None


def test_a_label_last_year_never_had_has_no_baseline_rather_than_a_baseline_of_zero():
    """A SKU new this year would otherwise be judged against zero sales last year, which "explains" a stop."""
    now = PRE_HEAT + 3600
    view = EngineView(
        engine(visits(LAST_YEAR.id, now - OFFSET - 600, 4), visits(THIS_YEAR.id, now - 30, 20)), THIS_YEAR.id, now
    )
    assert view.baseline(THIS_YEAR.id, "visits", now - 60, now, "channel", "tmall") == 0, "it had tmall, not then"
    assert view.baseline(THIS_YEAR.id, "visits", now - 60, now, "channel", "douyin") is None
    assert view.baseline(THIS_YEAR.id, "visits", now - 60, now, None, None) == 0
