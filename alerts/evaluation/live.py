"""The threshold engine at the edge: evaluates rules on the live metrics, persists transitions, pushes them.

Evaluation runs after metrics update, at most every ``MIN_EVALUATION_GAP_S``
(and never more than half the time), and at least every
``EVALUATE_EVERY_S`` so ``for`` durations elapse on a quiet night too.
Transitions are written to PostgreSQL before they are announced; if the
database is away they wait in memory and are written on the next evaluation.
Rules reload when their files change or on request, keeping every alert's state.
Evaluation, the rule-file watch and the silences refresh are supervised loops
(``app.core.supervision``): any error is logged and the loop restarts with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import msgspec

from alerts.evaluation import store
from alerts.evaluation.evaluate import Evaluator
from alerts.evaluation.inhibit import DEFAULT_INHIBIT_RULES, inhibitors
from alerts.evaluation.judgement import judge
from alerts.evaluation.lifecycle import Alert, Lifecycle, Observation, Transition, TransitionKind, has_reading
from alerts.evaluation.messages import NO_TERMS, AlertText, Terms, describe, reading
from alerts.evaluation.rules import AnyRule, RuleFile, load_directory
from alerts.evaluation.severity import Severity
from alerts.evaluation.silences import Matcher, Silence, silencing
from alerts.evaluation.views import (
    NO_CAMPAIGN_TIMEZONE,
    AckedAlert,
    AckGiven,
    Acknowledged,
    AckRecord,
    AlertNow,
    AlertTransition,
    LiveAlert,
    NightClock,
    clock_of,
    is_news,
)
from app.campaigns.model import Campaign
from app.core.configfile import ConfigError
from app.core.supervision import Progress
from app.metrics.live import LiveMetrics

log = logging.getLogger(__name__)

Announcement = LiveAlert | Acknowledged
"""What subscribers receive: a transition as the alert then was, or an acknowledgment."""

EVALUATE_EVERY_S = 1.0
MIN_EVALUATION_GAP_S = 0.2
"""Evaluations follow metric updates, but at most five times a second (metrics update after each commit)."""
SILENCES_REFRESH_S = 5.0
"""Silences are re-read this often, so ones added by the CLI or another server take effect."""
RULE_FILES_CHECK_S = 2.0
SUBSCRIBER_QUEUE = 1000
PENDING_LIMIT = 10_000
ACKNOWLEDGED = "acknowledged"
AWAITING_ACK_HORIZON_S = 12 * 3600.0
"""A restart brings back the resolved emergencies nobody acknowledged (still news for the banner) from this far back:
a night's, not last week's."""
EVALUATE_LOOP, RULE_FILES_LOOP, SILENCES_LOOP = "alerts-evaluate", "alerts-rule-files", "alerts-silences"


@dataclass
class RuleStatus:
    """What ``GET /v1/rules`` shows for a rule: its last evaluation."""

    series: int = 0
    triggered: int = 0
    last_evaluated_at: float | None = None


@dataclass
class AlertService:
    metrics: LiveMetrics
    pool: asyncpg.Pool
    rules_dir: Path
    clock: Callable[[], float] = time.time
    rules: RuleFile = field(default_factory=RuleFile)
    evaluator: Evaluator = field(default_factory=lambda: Evaluator([]))
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    silences: list[Silence] = field(default_factory=list)
    status: dict[str, RuleStatus] = field(default_factory=dict)
    eval_ms: float = 0.0
    _unwritten: list[Transition] = field(default_factory=list)
    _subscribers: set[asyncio.Queue[Announcement]] = field(default_factory=set)
    _listeners: list[Callable[[], None]] = field(default_factory=list)
    _inhibitors: dict[str, list[str]] | None = None
    _files_stamp: tuple[tuple[str, float], ...] = ()
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _terms: dict[str, tuple[Campaign, Terms]] = field(default_factory=dict)
    awaiting: dict[str, Alert] = field(default_factory=dict)
    """Resolved emergencies the room has not acknowledged yet (by id): still news on the wall's banner."""

    async def start(self) -> None:
        """Load rules (invalid files stop the start), restore firing alerts and silences, begin evaluating."""
        self._load_rules()
        async with self.pool.acquire() as conn:
            self.lifecycle = Lifecycle(await store.firing(conn))
            since = self.clock() - AWAITING_ACK_HORIZON_S
            self.awaiting = {a.id: a for a in await store.unacknowledged_emergencies(conn, since)}
            self._inhibitors = None
            self.silences = await store.silences(conn)
        supervisor = self.metrics.supervisor
        supervisor.start(EVALUATE_LOOP, self._loop)
        supervisor.start(RULE_FILES_LOOP, self._watch_files)
        supervisor.start(SILENCES_LOOP, self._refresh_silences)
        self.metrics.on_update(self._wake.set)

    async def stop(self) -> None:
        await self.metrics.supervisor.stop(EVALUATE_LOOP, RULE_FILES_LOOP, SILENCES_LOOP)

    # ---- rules ---------------------------------------------------------------------------------

    def _stamp(self) -> tuple[tuple[str, float], ...]:
        if not self.rules_dir.is_dir():
            return ()
        return tuple(sorted((str(p), p.stat().st_mtime) for p in self.rules_dir.glob("*.y*ml")))

    def _load_rules(self) -> None:
        self._files_stamp = self._stamp()
        rules = load_directory(self.rules_dir)
        previous = {r.name: r for r in self.rules.rules}
        evaluator = Evaluator(rules.rules, self.evaluator.detector_factory)
        evaluator.keep_detectors(self.evaluator, [r.name for r in rules.rules if previous.get(r.name) == r])
        self.rules, self.evaluator = rules, evaluator
        self._inhibitors = None
        self.status = {r.name: self.status.get(r.name, RuleStatus()) for r in rules.rules}
        log.info("rules loaded", extra={"rules": len(rules.rules), "directory": str(self.rules_dir)})

    def reload(self) -> int:
        """Reload rule files; on an invalid file the current rules stay and ConfigError is raised."""
        self._load_rules()
        self._wake.set()
        return len(self.rules.rules)

    async def _watch_files(self, progress: Progress) -> None:
        while True:
            await asyncio.sleep(RULE_FILES_CHECK_S)
            if self._stamp() != self._files_stamp:
                try:
                    self.reload()
                except ConfigError as exc:
                    self._files_stamp = self._stamp()
                    log.error("rule files changed but are invalid; keeping the current rules: %s", exc)
            progress()

    async def _refresh_silences(self, progress: Progress) -> None:
        """Refreshes at once when (re)started, so silences added during an outage apply when it ends. The resolved
        emergencies awaiting acknowledgment are re-read with them: one acknowledged through another server, or
        deleted with its rehearsal (``warroom rehearse``), leaves this one's banner too."""
        while True:
            async with self.pool.acquire() as conn:
                self.silences = await store.silences(conn)
                if self.awaiting:
                    self._acknowledged_elsewhere(await store.acknowledgments(conn, list(self.awaiting)))
            progress()
            await asyncio.sleep(SILENCES_REFRESH_S)

    # ---- evaluation ----------------------------------------------------------------------------

    async def _loop(self, progress: Progress) -> None:
        """Transitions the database could not take stay in memory: the error restarts the loop, and the
        next evaluation writes them. Nothing is judged before the metrics have caught up with the stored events:
        a replayed night read back half-way would resolve its alerts and fire them again."""
        await self.metrics.caught_up.wait()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), EVALUATE_EVERY_S)
            self._wake.clear()
            started = time.perf_counter()
            await self.evaluate_once()
            progress()
            # Evaluation runs on the event loop: leave it at least as long again to ingest and push,
            # so a large rule set slows alerting a little instead of stalling everything.
            await asyncio.sleep(max(MIN_EVALUATION_GAP_S, time.perf_counter() - started))

    async def evaluate_once(self) -> list[Transition]:
        """One evaluation of every rule, each campaign at ``now`` on its own clock (``app/campaigns/clock.py``);
        returns the transitions it produced (already persisted)."""
        wall = self.clock()
        started = time.perf_counter()
        engine = self.metrics.engine
        observations: list[Observation] = []
        transitions: list[Transition] = []
        alerted = {a.labels.get("campaign", "") for a in self.lifecycle.alerts.values()}
        for campaign in sorted(set(engine.campaigns) | alerted):
            found, caused = judge(engine, campaign, wall, self.evaluator, self.lifecycle)
            observations += found
            transitions += caused
        self._inhibitors = None
        self.eval_ms = (time.perf_counter() - started) * 1000
        for name in self.status:
            self.status[name] = RuleStatus(0, 0, wall)
        for observation in observations:
            status = self.status.get(observation.rule)
            if status is not None:
                status.series += 1
                status.triggered += bool(observation.triggered)
        self._unwritten = (self._unwritten + transitions)[-PENDING_LIMIT:]
        if not self._unwritten:
            return []
        written = self._unwritten
        async with self.pool.acquire() as conn:
            seqs = await store.record(conn, written, self._describe)
        self._unwritten = []
        for transition, seq in zip(written, seqs, strict=False):
            self._publish(self.render(transition.alert, transition=transition, seq=seq))
            alert = transition.alert
            if transition.kind == "resolved" and alert.peak == Severity.EMERGENCY and not alert.acknowledged_by:
                self.awaiting[alert.id] = alert
        self._changed()
        return written

    def _rule(self, name: str) -> AnyRule | None:
        return next((r for r in self.rules.rules if r.name == name), None)

    def _describe(self, transition: Transition) -> AlertText:
        rule = self._rule(transition.alert.rule)
        if rule is None:
            return AlertText(
                summary_en=transition.alert.rule,
                summary_zh=transition.alert.rule,
                link=f"/wall/{transition.alert.labels.get('campaign', '')}",
            )
        alert = transition.alert
        terms = self.terms(alert.labels.get("campaign"))
        resolved = transition.kind == "resolved"
        return describe(rule, alert.labels, transition.values, transition.severity, terms, resolved, alert.fired_values)

    def terms(self, campaign_id: str | None) -> Terms:
        """The campaign's currency and product names for its alert texts (worked out once per definition)."""
        campaign = self.metrics.engine.campaigns.get(campaign_id or "")
        if campaign is None:
            return NO_TERMS
        cached = self._terms.get(campaign.id)
        if cached is None or cached[0] is not campaign:
            products = {s.sku: (s.name, s.name_zh) for s in campaign.skus}
            cached = self._terms[campaign.id] = (campaign, Terms(campaign.currency, products))
        return cached[1]

    # ---- reading, acknowledging, silencing -----------------------------------------------------

    def silenced_by(self, alert: Alert) -> list[str]:
        """The silences that currently mute this alert."""
        return silencing({**alert.labels, "rule": alert.rule, "severity": alert.severity}, self.silences, self.clock())

    def inhibitors(self) -> dict[str, list[str]]:
        """Firing alerts muted by others (id → the others), worked out once per evaluation or rule reload."""
        if self._inhibitors is None:
            firing = [
                (a.id, {**a.labels, "rule": a.rule, "severity": a.severity})
                for a in self.lifecycle.alerts.values()
                if a.status == "firing"
            ]
            self._inhibitors = inhibitors(firing, (*DEFAULT_INHIBIT_RULES, *self.rules.inhibit))
        return self._inhibitors

    def render(self, alert: Alert, transition: Transition | None = None, seq: int | None = None) -> LiveAlert:
        """The alert as the API, the websocket and the wall show it (as of ``transition`` when given; a resolved one,
        awaiting acknowledgment, reads as resolved)."""
        fired_at = alert.fired_at or alert.pending_since
        kind: TransitionKind = "resolved" if alert.status == "resolved" else "firing"
        text = self._describe(
            transition or Transition(kind, alert, fired_at, alert.severity, None, alert.values, alert.flapping)
        )
        severity = transition.severity if transition else alert.severity
        previous = transition.previous_severity if transition else None
        values = transition.values if transition else alert.values
        rule = self._rule(alert.rule)
        terms = self.terms(alert.labels.get("campaign"))
        return LiveAlert(
            seq=seq,
            id=alert.id,
            transition=transition.kind if transition else None,
            rule=alert.rule,
            labels=alert.labels,
            status="resolved" if transition and transition.kind == "resolved" else alert.status,
            severity=severity,
            previous_severity=previous,
            fired_at=alert.fired_at,
            resolved_at=alert.resolved_at,
            flapping=alert.flapping,
            values=store.clean_values(values),
            acknowledged=AckRecord(by=alert.acknowledged_by, at=alert.acknowledged_at, comment=alert.ack_comment)
            if alert.acknowledged_by
            else None,
            summary_en=text.summary_en,
            summary_zh=text.summary_zh,
            runbook_en=text.runbook_en,
            runbook_zh=text.runbook_zh,
            link=text.link,
            silenced_by=self.silenced_by(alert),
            inhibited_by=self.inhibitors().get(alert.id, []),
            clock=clock_of(alert.labels),
            timezone=self.timezone(alert.labels.get("campaign")),
            fired_values=store.clean_values(alert.fired_values),
            reading=reading(rule, values, terms) if rule else None,
            fired_reading=reading(rule, alert.fired_values, terms) if rule else None,
        )

    def retell(self, transition: AlertTransition) -> AlertTransition:
        """A stored transition with the summary of its own moment (its values then, as the rule words them now);
        the alert row keeps only its latest summary. An acknowledgment, a transition without a reading or one of a
        rule no longer loaded keeps the stored summary."""
        rule = self._rule(transition.rule)
        if rule is None or transition.kind == ACKNOWLEDGED or not has_reading(transition.values):
            return transition
        terms = self.terms(transition.campaign)
        resolved = transition.kind == "resolved"
        fired = transition.fired_values
        text = describe(rule, transition.labels, transition.values, transition.severity, terms, resolved, fired)
        return msgspec.structs.replace(
            transition,
            summary_en=text.summary_en,
            summary_zh=text.summary_zh,
            reading=reading(rule, transition.values, terms),
        )

    def latest(self) -> list[AlertNow]:
        """Every firing alert's latest values and summary, for pages that show them live (the on-call page)."""
        return [
            AlertNow(
                id=shown.id,
                values=shown.values,
                reading=shown.reading,
                summary_en=shown.summary_en,
                summary_zh=shown.summary_zh,
            )
            for shown in (self.render(a) for a in list(self.lifecycle.alerts.values()) if a.status == "firing")
        ]

    def banner(self, campaign: str) -> list[LiveAlert]:
        """The emergencies of ``campaign`` (or of none) that are news for the room now (``views.is_news``): firing
        ones and resolved ones not yet acknowledged, and either for a while after its acknowledgment."""
        wall = self.clock()
        for alert_id in [i for i, a in self.awaiting.items() if not is_news(self._resolved(a), wall)]:
            del self.awaiting[alert_id]
        alerts = [
            *(
                self.render(a)
                for a in list(self.lifecycle.alerts.values())
                if a.status == "firing" and a.severity == Severity.EMERGENCY
            ),
            *(self._resolved(a) for a in self.awaiting.values()),
        ]
        return [a for a in alerts if a.labels.get("campaign", campaign) == campaign and is_news(a, wall)]

    def _resolved(self, alert: Alert) -> LiveAlert:
        """A resolved emergency awaiting acknowledgment, at the severity it reached."""
        return msgspec.structs.replace(self.render(alert), status="resolved", severity=alert.peak or alert.severity)

    def timezone(self, campaign_id: str | None) -> str:
        """The time zone an alert of this campaign reads in (its night's clock)."""
        campaign = self.metrics.engine.campaigns.get(campaign_id or "")
        return campaign.timezone if campaign is not None else NO_CAMPAIGN_TIMEZONE

    def night_clocks(self) -> list[NightClock]:
        """Where each night being rehearsed stands (judged, on a replay clock), for the on-call page's header."""
        engine, wall = self.metrics.engine, self.clock()
        clocks = []
        for campaign_id, campaign in sorted(engine.campaigns.items()):
            clock = engine.clock(campaign_id, wall)
            if clock.mode != "replay" or not engine.judged(campaign_id, clock):
                continue
            upcoming = [(p.start, name) for name, p in campaign.phases.items() if p.start > clock.moment]
            next_at, next_phase = min(upcoming) if upcoming else (None, None)
            clocks.append(
                NightClock(
                    campaign=campaign_id,
                    name=campaign.name,
                    name_zh=campaign.name_zh,
                    clock=clock.mode,
                    timezone=campaign.timezone,
                    now=clock.now,
                    phase=campaign.phase_at(clock.moment),
                    next_phase=next_phase,
                    next_phase_at=next_at.timestamp() if next_at is not None else None,
                )
            )
        return clocks

    async def acknowledge(self, alert_id: str, who: str, comment: str | None) -> LiveAlert | AckedAlert | None:
        """Store the acknowledgment, then apply it to the live alert at the same time, so a restart shows it
        unchanged."""
        now = self.clock()
        async with self.pool.acquire() as conn:
            recorded = await store.acknowledge(conn, alert_id, who, comment, now)
        if recorded is None:
            return None
        row, seq = recorded
        live = self.lifecycle.acknowledge(alert_id, who, comment, now)
        if alert_id in self.awaiting:
            awaiting = self.awaiting[alert_id]
            awaiting.acknowledged_by, awaiting.acknowledged_at, awaiting.ack_comment = who, now, comment
        given = AckGiven(by=who, comment=comment)
        self._publish(Acknowledged(seq=seq, transition=ACKNOWLEDGED, id=alert_id, acknowledged=given))
        self._changed()
        return self.render(live) if live else AckedAlert(id=alert_id, status=row["status"], acknowledged=given)

    def _acknowledged_elsewhere(self, stored: dict[str, tuple[str | None, float | None, str | None]]) -> None:
        """Apply the stored acknowledgments (by, at, comment) of the awaiting alerts; forget those no longer stored."""
        for alert_id in list(self.awaiting):
            if alert_id not in stored:
                del self.awaiting[alert_id]
                continue
            by, at, comment = stored[alert_id]
            alert = self.awaiting[alert_id]
            if by is not None and alert.acknowledged_by is None:
                alert.acknowledged_by, alert.acknowledged_at, alert.ack_comment = by, at, comment

    async def add_silence(
        self, matchers: tuple[Matcher, ...], starts_at: float, ends_at: float, reason: str, who: str
    ) -> Silence:
        silence = Silence(str(uuid.uuid4()), matchers, starts_at, ends_at, reason, who)
        async with self.pool.acquire() as conn:
            await store.save_silence(conn, silence)
        self.silences.append(silence)
        self._changed()
        return silence

    async def expire_silence(self, silence_id: str) -> bool:
        async with self.pool.acquire() as conn:
            expired = await store.expire_silence(conn, silence_id)
            self.silences = await store.silences(conn)
        self._changed()
        return expired

    # ---- push ----------------------------------------------------------------------------------

    @property
    def settled(self) -> bool:
        """Every transition so far is stored (none waits for the database)."""
        return not self._unwritten

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after transitions are stored and after acknowledgments (delivery, streams)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def subscribe(self) -> asyncio.Queue[Announcement]:
        queue: asyncio.Queue[Announcement] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Announcement]) -> None:
        self._subscribers.discard(queue)

    def _publish(self, event: Announcement) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)
