"""The default rule pack over the drill simulator, in simulated time (pure: engine + rules + lifecycle).

Each incident must fire its intended alert within a simulated minute; a quiet
night must fire no warning or emergency.
"""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest

from alerts.evaluation.evaluate import Evaluator
from alerts.evaluation.lifecycle import Lifecycle, Transition
from alerts.evaluation.metricview import EngineView
from alerts.evaluation.rules import load_directory
from app.campaigns.model import load_file
from app.drill.demo import drill_schedule
from app.drill.scenario import Incident, Scenario
from app.drill.simulate import HISTORY_GROWTH, HISTORY_SHIFT
from app.ingest.events import COLUMNS, Defaults, decode_event
from app.metrics.engine import Engine
from app.metrics.measures import Event

ROOT = Path(__file__).resolve().parent.parent
BURST_AT = datetime(2026, 11, 11, 0, 0, tzinfo=timezone(timedelta(hours=8)))
BEFORE_S, AFTER_S = 20 * 60, 60 * 60
EVALUATE_EVERY_S = 5
SCALE = 80.0
"""Pre-heat visits per simulated minute: enough volume that a one-minute signal stands out of the noise."""
FIELDS = {name: i for i, name in enumerate(COLUMNS)}


def to_events(raw: list[tuple[float, dict]], campaign: str, origin: float, seq: list[int]) -> list[Event]:
    out = []
    for t, event in raw:
        event = {
            **event,
            "campaign": campaign,
            "occurred_at": datetime.fromtimestamp(origin + t, UTC).isoformat(),
        }
        row, errors = decode_event(
            msgspec.json.encode(event), datetime.fromtimestamp(origin + t + 1, UTC), Defaults("default", "CNY")
        )
        assert not errors, errors
        seq[0] += 1
        out.append(
            Event(
                seq[0],
                row[1],
                row[2].timestamp(),
                campaign,
                *(
                    row[FIELDS[c]]
                    for c in (
                        "channel",
                        "user_id",
                        "anonymous_id",
                        "order_id",
                        "sku",
                        "quantity",
                        "amount",
                        "warehouse",
                        "metric",
                        "value",
                        "labels",
                    )
                ),
            )
        )
    return out


def run_night(incidents: tuple[str, ...]) -> list[Transition]:
    this_year = load_file(ROOT / "campaigns" / "double11-demo.yaml")
    last_year = load_file(ROOT / "campaigns" / "double11-2025.yaml")
    this_year = drill_schedule(this_year, BURST_AT, 1.0, BEFORE_S, AFTER_S)
    last_year = drill_schedule(last_year, BURST_AT - HISTORY_SHIFT, 1.0, BEFORE_S, AFTER_S)
    engine = Engine([this_year, last_year])
    seq = [0]
    history = Scenario(last_year.id, this_year.skus, 12, SCALE / HISTORY_GROWTH, (), BEFORE_S, "hist")
    origin_ly = (BURST_AT - HISTORY_SHIFT).timestamp()
    for t in range(-BEFORE_S, AFTER_S):
        engine.apply(to_events(history.step(t), last_year.id, origin_ly, seq))
    live = Scenario(
        this_year.id, this_year.skus, 11, SCALE, tuple(Incident.parse(i) for i in incidents), BEFORE_S, "sim"
    )
    rules = load_directory(ROOT / "rules")
    evaluator, lifecycle = Evaluator(rules.rules), Lifecycle()
    transitions: list[Transition] = []
    origin = BURST_AT.timestamp()
    for t in range(-BEFORE_S, AFTER_S):
        engine.apply(to_events(live.step(t), this_year.id, origin, seq))
        if t % EVALUATE_EVERY_S == 0:
            now = origin + t + 1
            observations = evaluator.evaluate(EngineView(engine, this_year.id, now))
            for transition in lifecycle.observe(observations, now, evaluator.for_seconds(), this_year.id):
                transitions.append(transition)
    return transitions


def fired(transitions: list[Transition], rule: str) -> list[Transition]:
    return [t for t in transitions if t.alert.rule == rule and t.kind in ("firing", "escalated")]


@pytest.fixture(scope="module")
def quiet() -> list[Transition]:
    return run_night(())


def test_quiet_night_fires_no_warning_or_emergency(quiet):
    loud = [
        (t.alert.rule, t.severity, t.alert.labels, t.values)
        for t in quiet
        if t.kind != "resolved" and t.severity != "reminder"
    ]
    assert loud == []


INCIDENTS = {
    "gmv_drop@4": (("orders_below_last_year", "warning"),),
    "sellout@16": (("stock_low", "emergency"), ("cart_surge_on_sold_out_sku", "warning")),
    "payment_outage@28": (("payment_outage", "emergency"),),
    "brushing@36": (("brushing", "warning"),),
    "slow_pages@42": (("slow_pages", "warning"),),
}
"""One night with every incident, spaced so that none masks another, and the alerts each must fire."""
EXPECTED = [(incident, rule, severity) for incident, alerts in INCIDENTS.items() for rule, severity in alerts]


@pytest.fixture(scope="module")
def eventful() -> list[Transition]:
    return run_night(tuple(INCIDENTS))


@pytest.mark.parametrize(("incident", "rule", "severity"), EXPECTED)
def test_each_incident_fires_its_alert_within_a_minute(eventful, incident, rule, severity):
    start = BURST_AT.timestamp() + Incident.parse(incident).start_s
    hits = [t for t in fired(eventful, rule) if t.severity == severity and start <= t.at <= start + 60]
    assert hits, [(t.alert.rule, t.kind, t.severity, round(t.at - start)) for t in eventful if t.kind != "resolved"]
