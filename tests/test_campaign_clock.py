"""The campaign clock in the pure engine: live nights on the wall clock, replays on their watermarks."""

import itertools
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest

from alerts.evaluation.evaluate import Evaluator
from alerts.evaluation.lifecycle import Lifecycle
from alerts.evaluation.metricview import EngineView
from alerts.evaluation.rules import parse
from app.campaigns.clock import REPLAY_LATENESS_S
from app.campaigns.model import Campaign, Phase, Phases, Targets
from app.metrics.engine import Engine
from app.metrics.measures import Event

BURST = datetime(2026, 11, 11, 0, 0, tzinfo=timezone(timedelta(hours=8)))
T0 = BURST.timestamp()
LAST_YEAR = datetime(2025, 11, 11, 0, 0, tzinfo=timezone(timedelta(hours=8)))
WALL = datetime(2026, 12, 6, 15, 0, tzinfo=UTC).timestamp()
"""A wall clock weeks after the night: only a replay puts the night on."""
_seq = itertools.count(1)


def night(cid: str, burst: datetime, baseline: str | None = None) -> Campaign:
    return Campaign(
        id=cid,
        name=cid,
        baseline=baseline,
        phases=Phases(
            preheat=Phase(burst - timedelta(hours=2), burst),
            burst=Phase(burst, burst + timedelta(hours=24)),
            wrapup=Phase(burst + timedelta(hours=24), burst + timedelta(hours=48)),
        ),
    )


def ev(type_: str, at: float, campaign: str, **fields) -> Event:
    base = dict.fromkeys(Event._fields)
    base.update(seq=next(_seq), type=type_, occurred_at=at, campaign=campaign, **fields)
    return Event(**base)


def paid(at: float, campaign: str, amount: int = 100) -> Event:
    return ev("order_paid", at, campaign, order_id=f"o{next(_seq)}", amount=Decimal(amount))


def test_a_campaign_without_watermarks_runs_live_and_one_with_them_on_its_latest_watermark():
    engine = Engine([night("live", BURST), night("replay", BURST)])
    engine.apply([paid(T0 + 10, "live"), paid(T0 + 10, "replay")])
    assert engine.clock("live", WALL).mode == "live" and engine.clock("live", WALL).now == WALL
    engine.apply([ev("watermark", T0 + 300, "replay"), ev("watermark", T0 + 200, "replay")])
    clock = engine.clock("replay", WALL)
    assert clock.mode == "replay" and clock.now == T0 + 300 - REPLAY_LATENESS_S, "the latest watermark wins"
    snapshot = engine.snapshot("replay", WALL)
    assert snapshot.clock == "replay" and snapshot.phase == "burst"
    assert datetime.fromisoformat(snapshot.as_of).timestamp() == T0 + 300 - REPLAY_LATENESS_S
    assert snapshot.totals.orders_paid == 1, "a watermark is no shopping event"
    assert engine.snapshot("live", WALL).phase is None, "the live night ended weeks ago on the wall clock"


def test_only_a_night_that_is_on_and_is_nobodys_baseline_is_judged():
    engine = Engine([night("this", BURST, baseline="last"), night("last", LAST_YEAR)])
    engine.apply([paid(T0 + 10, "this"), paid(LAST_YEAR.timestamp() + 10, "last")])
    assert not engine.judged("this", engine.clock("this", WALL)), "finished on the wall clock"
    engine.apply([ev("watermark", T0 + 600, "this"), ev("watermark", LAST_YEAR.timestamp() + 600, "last")])
    assert engine.judged("this", engine.clock("this", WALL))
    assert not engine.judged("last", engine.clock("last", WALL)), "last year's night is history, even replayed"
    live = Engine([night("now", datetime.fromtimestamp(WALL - 3600, UTC))])
    assert live.judged("now", live.clock("now", WALL)), "a live night an hour into its burst"


def test_last_year_is_compared_only_as_far_as_it_has_been_replayed_and_moves_within_a_minute():
    engine = Engine([night("this", BURST, baseline="last"), night("last", LAST_YEAR)])
    ly = LAST_YEAR.timestamp()
    engine.apply([paid(ly + s, "last") for s in range(0, 120, 2)])  # one order every 2 s for two minutes
    engine.apply([ev("watermark", ly + 60, "last"), ev("watermark", T0 + 90, "this")])
    assert engine.snapshot("this", WALL).baseline is None, "last year has not been sent as far as 00:01:28"
    engine = Engine([night("this", BURST, baseline="last"), night("last", LAST_YEAR)])
    engine.apply([paid(ly + s, "last") for s in range(0, 120, 2)])
    engine.apply([ev("watermark", ly + 400, "last")])
    readings = []
    for second in (30, 45, 75, 90, 105):
        engine.apply([ev("watermark", T0 + second + REPLAY_LATENESS_S, "this")])
        readings.append(engine.snapshot("this", WALL).baseline.orders_paid)
    assert readings == [15, 23, 38, 45, 53], "last year's orders before the same second, not minute steps"


OUTAGE_RULE = """
rules:
  - name: orders_below_last_year
    kind: static
    metric: orders_created
    window: 1m
    change: {vs: baseline, min_reference: 20}
    for: 15s
    summary: {en: "Orders {change_pct} against last year", zh: "下单量较去年变化 {change_pct}"}
    runbook: {en: "Check checkout.", zh: "检查结算。"}
    conditions:
      emergency: {op: "<=", value: -0.6}
"""


def test_a_live_night_keeps_its_clock_when_no_event_arrives_so_an_outage_still_fires():
    """Nothing comes in after 00:05: the wall clock moves on, the last minute's orders are zero against last
    year's, and the emergency fires as it would with events arriving."""
    burst = datetime.fromtimestamp(WALL - 600, UTC)
    this, last = night("this", burst, baseline="last"), night("last", LAST_YEAR)
    engine = Engine([this, last])
    ly, t0 = LAST_YEAR.timestamp(), burst.timestamp()
    created = [(s, f"o{s}") for s in range(0, 600)]
    engine.apply([ev("order_created", ly + s, "last", order_id=o, amount=Decimal(1), user_id="u") for s, o in created])
    engine.apply(
        [ev("order_created", t0 + s, "this", order_id=o, amount=Decimal(1), user_id="u") for s, o in created[:300]]
    )
    evaluator, lifecycle = Evaluator(parse(OUTAGE_RULE).rules), Lifecycle()
    fired = []
    for wall in range(int(t0) + 300, int(t0) + 420, 5):
        view = EngineView(engine, "this", wall)
        assert view.clock.mode == "live" and view.now == wall
        for transition in lifecycle.observe(evaluator.evaluate(view), view.now, evaluator.for_seconds(), "this"):
            fired.append((transition.kind, transition.severity, transition.at - t0))
    assert fired and fired[0][:2] == ("firing", "emergency") and fired[0][2] <= 300 + 60 + 15 + 5, fired


def test_no_projection_from_last_year_until_its_whole_night_is_loaded():
    """A partial total of last year would overstate how far along the night is and understate the projection."""
    this = msgspec.structs.replace(night("this", BURST, baseline="last"), targets=Targets(gmv=10_000))
    engine = Engine([this, night("last", LAST_YEAR)])
    ly = LAST_YEAR.timestamp()
    engine.apply([paid(ly + s, "last") for s in range(0, 600, 10)])
    engine.apply([paid(T0 + s, "this") for s in range(0, 300, 10)])
    engine.apply([ev("watermark", ly + 600, "last"), ev("watermark", T0 + 300, "this")])
    assert engine.snapshot("this", WALL).pacing.projected_final is None, "last year is still being loaded"
    engine.apply([ev("watermark", night("last", LAST_YEAR).end.timestamp() + REPLAY_LATENESS_S, "last")])
    pacing = engine.snapshot("this", WALL).pacing
    assert pacing.method == "baseline" and pacing.projected_final == pytest.approx(6000, rel=0.05), "half of last year"
