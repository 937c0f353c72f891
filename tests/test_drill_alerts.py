"""The default rule pack over the demo's night, in the night's own time (pure: engine + rules + lifecycle).

The night is the demo's (``app/drill/demo.py``: its seed, scale and incidents), fed to the engine as a replay
feeds the server: each campaign at its own YAML dates, this year's events with a ``watermark`` after every
simulated second, last year's whole night first (as the demo sends it, as fast as the server takes it). The
rules are evaluated the way the server evaluates a 60x replay: every 0.2 to 1 real second, that is every 12 to
60 simulated seconds, each campaign at its own clock. Every incident must raise its alert at its severity
within a simulated minute, every alert must be over 3 simulated minutes after its incident ends, and a quiet
night and last year's campaign raise nothing at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from alerts.evaluation import messages
from alerts.evaluation.evaluate import Evaluator
from alerts.evaluation.inhibit import DEFAULT_INHIBIT_RULES, inhibitors
from alerts.evaluation.judgement import judge
from alerts.evaluation.lifecycle import Lifecycle, Transition
from alerts.evaluation.rules import load_directory
from alerts.evaluation.severity import Severity, rank
from app.campaigns.model import load_file
from app.drill.demo import DEMO_INCIDENTS, DEMO_MINUTES_AFTER, DEMO_MINUTES_BEFORE, DEMO_SCALE, DEMO_SEED
from app.drill.scenario import INCIDENTS, Incident, Scenario
from app.drill.simulate import HISTORY_GROWTH
from app.metrics.engine import Engine
from app.metrics.measures import Event

ROOT = Path(__file__).resolve().parent.parent
THIS_YEAR = load_file(ROOT / "campaigns" / "double11-demo.yaml")
LAST_YEAR = load_file(ROOT / "campaigns" / f"{THIS_YEAR.baseline}.yaml")
RULES = load_directory(ROOT / "rules")
WALL = datetime(2026, 12, 6, 15, 0, tzinfo=UTC).timestamp()
"""Any wall time will do: a campaign that receives watermarks runs on them."""
BEFORE_S = int(DEMO_MINUTES_BEFORE * 60)
HISTORY_END_S = int(DEMO_MINUTES_AFTER * 60)
"""Last year's night as far as the demo sends it: the projection reads last year's final GMV."""
EVENTFUL_END_S = 60 * 60
"""Past the last incident's end and its 3 minutes to resolve."""
QUIET_END_S = 2 * 3600
"""The burst and its decay to the night's floor (a 15-minute half-life): after that the night repeats itself."""
CATCH_S = 60.0
RESOLVE_S = 180.0
EVENTFUL_CADENCES = (15, 24)
"""Simulated seconds between evaluations: a 60x replay streaming in wakes the evaluation at each commit, every
0.25 or 0.4 real seconds. (At the 1-second floor, 60 seconds of the night, a rule needing any data cannot fire
within a minute of anything: only a replay that stops sending leaves the evaluation that idle.)"""
QUIET_CADENCE = 30
RIGHT_ALERT: dict[str, tuple[str, Severity]] = {
    "gmv_drop": ("orders_per_checkout_drop", Severity.WARNING),
    "sellout": ("stock_low", Severity.EMERGENCY),
    "payment_outage": ("payment_success_rate_low", Severity.EMERGENCY),
    "brushing": ("brushing", Severity.WARNING),
    "slow_pages": ("slow_pages", Severity.WARNING),
}
"""The alert each demo incident must raise within a minute, at the severity the incident deserves."""
CONFIRMING_S = 120.0
"""The payment outage rule (orders created, few paid) reads two minutes of orders to say so without false alarms
at the night's floor (at 00:28 the shop takes about ten a minute), so it confirms the outage within two minutes."""
SCHEDULE = tuple(Incident.parse(text) for text in DEMO_INCIDENTS)


@dataclass
class Night:
    """What one night raised: every transition, and for each firing or escalation the alerts that muted it."""

    transitions: list[Transition] = field(default_factory=list)
    muted: dict[int, list[str]] = field(default_factory=dict)
    """Index into ``transitions`` → the rules whose firing alerts inhibited that transition's alert then."""

    def raised(self) -> list[tuple[int, Transition]]:
        return [(i, t) for i, t in enumerate(self.transitions) if t.kind in ("firing", "escalated")]


class Feed:
    """Scenario events as the engine reads them, numbered in the order they are sent."""

    def __init__(self, seq: int = 0) -> None:
        self.seq = seq

    def events(self, raw: list[tuple[float, dict[str, Any]]], campaign: str, origin: float) -> list[Event]:
        out = []
        for t, event in raw:
            self.seq += 1
            amount, labels = event.get("amount"), event.get("labels")
            out.append(
                Event(
                    self.seq,
                    event["type"],
                    origin + t,
                    campaign,
                    event.get("channel"),
                    event.get("user_id"),
                    event.get("anonymous_id"),
                    event.get("order_id"),
                    event.get("sku"),
                    event.get("quantity"),
                    Decimal(str(amount)) if amount is not None else None,
                    event.get("warehouse"),
                    event.get("metric"),
                    event.get("value"),
                    json.dumps(labels) if labels else None,
                )
            )
        return out

    def watermark(self, campaign: str, at: float) -> Event:
        self.seq += 1
        return Event(self.seq, "watermark", at, campaign, *([None] * 11))


@pytest.fixture(scope="module")
def last_years_night() -> tuple[bytes, int]:
    """Last year's night, replayed once into an engine: its checkpoint and the last event number."""
    engine, feed = Engine([THIS_YEAR, LAST_YEAR]), Feed()
    history = Scenario(LAST_YEAR.id, THIS_YEAR.skus, DEMO_SEED + 1, DEMO_SCALE / HISTORY_GROWTH, (), BEFORE_S, "hist")
    origin = LAST_YEAR.phases.burst.start.timestamp()
    for t in range(-BEFORE_S, HISTORY_END_S):
        engine.apply(feed.events(history.step(t), LAST_YEAR.id, origin))
    engine.apply([feed.watermark(LAST_YEAR.id, origin + HISTORY_END_S)])
    return engine.dump(), feed.seq


def run_night(history: tuple[bytes, int], incidents: tuple[Incident, ...], every_s: int, end_s: int) -> Night:
    """This year's night replayed second by second after last year's, evaluated every ``every_s`` seconds of it."""
    checkpoint, seq = history
    engine, feed = Engine.load(checkpoint, [THIS_YEAR, LAST_YEAR]), Feed(seq)
    live = Scenario(THIS_YEAR.id, THIS_YEAR.skus, DEMO_SEED, DEMO_SCALE, incidents, BEFORE_S, f"sim{DEMO_SEED}")
    evaluator, lifecycle, night = Evaluator(RULES.rules), Lifecycle(), Night()
    origin = THIS_YEAR.phases.burst.start.timestamp()
    for t in range(-BEFORE_S, end_s):
        engine.apply([*feed.events(live.step(t), THIS_YEAR.id, origin), feed.watermark(THIS_YEAR.id, origin + t + 1)])
        if (t + 1) % every_s:
            continue
        alerted = {a.labels.get("campaign", "") for a in lifecycle.alerts.values()}
        for campaign in sorted(set(engine.campaigns) | alerted):
            for transition in judge(engine, campaign, WALL, evaluator, lifecycle)[1]:
                night.transitions.append(transition)
                if transition.kind in ("firing", "escalated"):
                    night.muted[len(night.transitions) - 1] = muting(lifecycle, transition)
    return night


def muting(lifecycle: Lifecycle, transition: Transition) -> list[str]:
    """The rules of the firing alerts that inhibit ``transition``'s alert (the pack's and the built-in rules)."""
    firing = {a.id: a for a in lifecycle.alerts.values() if a.status == "firing"}
    labelled = [(i, {**a.labels, "rule": a.rule, "severity": a.severity}) for i, a in firing.items()]
    sources = inhibitors(labelled, (*DEFAULT_INHIBIT_RULES, *RULES.inhibit)).get(transition.alert.id, [])
    return sorted(firing[i].rule for i in sources)


def seconds_after(transition: Transition, moment_s: float) -> float:
    """How long after ``moment_s`` (simulated seconds from midnight) the transition happened."""
    return transition.at - THIS_YEAR.phases.burst.start.timestamp() - moment_s


def describe(night: Night) -> list[tuple[str, str, str, float]]:
    return [(t.kind, t.alert.rule, t.severity, round(seconds_after(t, 0) / 60, 2)) for t in night.transitions]


@pytest.fixture(scope="module", params=EVENTFUL_CADENCES, ids=lambda s: f"every-{s}s")
def eventful(request, last_years_night) -> Night:
    return run_night(last_years_night, SCHEDULE, request.param, EVENTFUL_END_S)


@pytest.fixture(scope="module")
def quiet(last_years_night) -> Night:
    return run_night(last_years_night, (), QUIET_CADENCE, QUIET_END_S)


def test_the_demo_schedules_every_incident_the_pack_must_catch():
    assert sorted(i.name for i in SCHEDULE) == sorted(RIGHT_ALERT)


@pytest.mark.parametrize("incident", SCHEDULE, ids=lambda i: f"{i.name}@{i.start_s / 60:g}")
def test_each_incident_raises_its_alert_at_its_severity_within_a_simulated_minute(eventful, incident):
    rule, severity = RIGHT_ALERT[incident.name]
    hits = [
        t
        for _, t in eventful.raised()
        if t.alert.rule == rule and t.severity == severity and 0 <= seconds_after(t, incident.start_s) <= CATCH_S
    ]
    assert hits, describe(eventful)


def test_the_payment_outage_rule_confirms_the_outage_from_the_orders_themselves(eventful):
    outage = next(i for i in SCHEDULE if i.name == "payment_outage")
    confirmed = [
        round(seconds_after(t, outage.start_s))
        for _, t in eventful.raised()
        if t.alert.rule == "payment_outage" and t.severity == Severity.EMERGENCY
    ]
    assert confirmed and 0 <= confirmed[0] <= CONFIRMING_S, describe(eventful)


def owner(moment_s: float) -> Incident | None:
    """The incident an alert raised at ``moment_s`` belongs to: the latest begun, if it has not been over for
    longer than it is given to settle."""
    begun = [i for i in SCHEDULE if i.start_s <= moment_s <= i.start_s + INCIDENTS[i.name] + RESOLVE_S]
    return max(begun, key=lambda i: i.start_s, default=None)


@pytest.mark.parametrize("incident", SCHEDULE, ids=lambda i: f"{i.name}@{i.start_s / 60:g}")
def test_nothing_an_incident_raises_is_more_severe_than_the_incident_unless_muted(eventful, incident):
    """A broken checkout is a warning, not an emergency; an emergency another alert explains (orders falling
    90% while pages are slow) is muted by it and pages nobody."""
    _, severity = RIGHT_ALERT[incident.name]
    louder = [
        (t.alert.rule, t.severity, round(seconds_after(t, incident.start_s)))
        for i, t in eventful.raised()
        if owner(seconds_after(t, 0)) == incident and rank(t.severity) > rank(severity) and not eventful.muted[i]
    ]
    assert louder == []


def test_every_alert_belongs_to_an_incident_and_is_over_within_three_simulated_minutes_of_its_end(eventful):
    """Each alert fires while an incident runs (or within the 3 minutes it is given to settle) and has resolved
    3 simulated minutes after the last incident it overlaps has ended."""
    spans = sorted((i.start_s, i.start_s + INCIDENTS[i.name]) for i in SCHEDULE)
    open_at: dict[str, float] = {}
    late: list[tuple[str, str, float]] = []
    for transition in eventful.transitions:
        key, moment = transition.alert.fingerprint, seconds_after(transition, 0)
        if transition.kind == "firing":
            open_at[key] = moment
            if owner(moment) is None:
                late.append(("fired outside every incident", transition.alert.rule, round(moment / 60, 2)))
        elif transition.kind == "resolved":
            fired = open_at.pop(key)
            ended = max(end for start, end in spans if start <= moment and end + RESOLVE_S >= fired)
            if moment - ended > RESOLVE_S:
                late.append(("resolved late", transition.alert.rule, round(moment / 60, 2)))
    late += [("still firing", key, round(moment / 60, 2)) for key, moment in open_at.items()]
    assert late == [], describe(eventful)


def test_every_alert_of_the_night_reads_filled_in_and_a_resolved_one_as_a_recovery(eventful):
    """Each transition's text as the server words it (``AlertService._describe``), in both languages: every
    placeholder filled, a resolution a recovery with the threshold its alert fired at."""
    terms = messages.Terms(THIS_YEAR.currency, {s.sku: (s.name, s.name_zh) for s in THIS_YEAR.skus})
    rules = {rule.name: rule for rule in RULES.rules}
    resolved = 0
    for transition in eventful.transitions:
        alert, done = transition.alert, transition.kind == "resolved"
        text = messages.describe(
            rules[alert.rule], alert.labels, transition.values, transition.severity, terms, done, alert.fired_values
        )
        for summary in (text.summary_zh, text.summary_en):
            assert not set("{}") & set(summary) and "None" not in summary, (transition.kind, alert.rule, summary)
            assert "unknown" not in summary and "未知" not in summary, (transition.kind, alert.rule, summary)
        if done:
            resolved += 1
            assert text.summary_zh.startswith("已恢复：") and text.summary_en.startswith("Resolved: "), text
            assert "紧急" not in text.summary_zh and "仅剩" not in text.summary_zh, text
    assert resolved >= len(SCHEDULE), "every incident's alert resolved"


def test_a_quiet_night_raises_nothing_not_even_a_reminder(quiet):
    assert describe(quiet) == []


def test_last_years_campaign_is_replayed_but_never_judged(eventful, quiet, last_years_night):
    engine = Engine.load(last_years_night[0], [THIS_YEAR, LAST_YEAR])
    clock = engine.clock(LAST_YEAR.id, WALL)
    assert clock.mode == "replay" and LAST_YEAR.start <= clock.moment < LAST_YEAR.end, "its night is on"
    assert not engine.judged(LAST_YEAR.id, clock), "but it is this year's baseline"
    assert [t for t in (*eventful.transitions, *quiet.transitions) if t.alert.labels["campaign"] != THIS_YEAR.id] == []
