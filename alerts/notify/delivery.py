"""Alert delivery at the edge: runs the dispatcher on the live alerts, stores its decisions, sends them.

The dispatch loop looks at the alerts whenever they change (a transition, an
acknowledgment, a silence) and at least every ``PLAN_EVERY_S``, but only once
every transition is stored, so a message never announces what the database
does not hold. Each flush is written to the outbox before anything is sent.
One sender per Apprise URL takes that URL's due messages oldest first,
retries with backoff and jitter (a message waiting out its backoff does not
hold back newer ones), records every attempt, and drops repeats and
escalations that acknowledgment or resolution made moot. A channel that is
down delays only itself. After a restart the log and the outbox are read
back: decided messages are still sent, delivered ones are not sent again.
Timing is on the wall clock (people are real): an alert of a replayed night fired at the night's time, so
escalation counts from when delivery first saw it firing (``_fired``).
The dispatch loop and the senders are supervised loops (``app.core.supervision``):
any error, a database outage included, restarts them with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from alerts.evaluation.lifecycle import Alert
from alerts.evaluation.live import AlertService
from alerts.evaluation.messages import AlertText, compose_group
from alerts.evaluation.silences import silencing
from alerts.evaluation.views import clock_of
from alerts.notify import channels, outbox
from alerts.notify.dispatch import Dispatcher, Flush, GroupId, LogEntry, Notice
from alerts.notify.routing import Routing
from app.core import telemetry
from app.core.database import database_unavailable
from app.core.supervision import Progress

log = logging.getLogger(__name__)

PLAN_EVERY_S = 1.0
"""Look at the groups at least this often (silences expiring, escalation steps coming due)."""
IDLE_CHECK_S = 30.0
"""A sender with nothing to do still looks at the outbox this often."""
DATABASE_RETRY_S = 2.0
"""A delivered message's attempt is written down again this often while the database is away."""
STOP_GRACE_S = channels.SEND_TIMEOUT_S + 1
"""On shutdown, a send in flight may finish and be recorded (else it would be sent again after the restart)."""
MOOT_KINDS = frozenset({"repeat", "escalation"})
DISPATCH_LOOP = "delivery-dispatch"
SENDER_STALL_AFTER_S = IDLE_CHECK_S + channels.SEND_TIMEOUT_S + 30.0
"""A sender progresses at least once per idle check or send."""


@dataclass
class DeliveryService:
    alerts: AlertService
    pool: asyncpg.Pool
    routing: Routing
    public_url: str
    clock: Callable[[], float] = time.time
    dispatcher: Dispatcher = field(init=False)
    log: dict[GroupId, LogEntry] = field(default_factory=dict)
    _seen: dict[str, Notice] = field(default_factory=dict)
    """The firing alerts at the last look, to remember what a resolved one was."""
    _resolved: dict[str, Notice] = field(default_factory=dict)
    """Resolved alerts some receiver was told about and has not yet heard resolved."""
    _rehearsed: dict[str, float] = field(default_factory=dict)
    """Firing alerts of replayed nights → the wall time delivery first saw each one firing."""
    _urls: dict[tuple[str, str], str] = field(default_factory=dict)
    """(contact point, url id) → the expanded URL."""
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _senders: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _sending: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dispatcher = Dispatcher(self.routing)
        for name, point in self.routing.contact_points.items():
            for url in point.urls:
                self._urls[(name, channels.url_id(url))] = url
        self._mask = channels.SecretMask(list(self._urls.values()))

    def target(self, contact_point: str, url_id: str) -> str | None:
        """The URL in the form the API may show, or None when it is no longer configured."""
        url = self._urls.get((contact_point, url_id))
        return channels.public_form(url) if url is not None else None

    def targets(self, contact_point: str) -> list[str]:
        return [channels.public_form(url) for (name, _), url in self._urls.items() if name == contact_point]

    async def start(self) -> None:
        channels.guard_log(self._mask)
        async with self.pool.acquire() as conn:
            self.log = await outbox.load_log(conn)
            abandoned = await outbox.abandon_unknown(conn, set(self._urls))
        if abandoned:
            log.warning(
                "pending notifications to contact points no longer configured marked failed", extra={"count": abandoned}
            )
        self.alerts.on_change(self._wake.set)
        supervisor = self.alerts.metrics.supervisor
        supervisor.start(DISPATCH_LOOP, self._dispatch_loop)
        for name, identity in self._urls:
            self._senders[(name, identity)] = asyncio.Event()
            loop = f"delivery-sender-{name}-{identity}"
            self._sending[loop] = supervisor.start(
                loop,
                functools.partial(self._send_loop, name=name, identity=identity),
                stall_after_s=SENDER_STALL_AFTER_S,
            )

    async def stop(self) -> None:
        """Stop deciding at once; let sends in flight finish and be recorded, then stop the senders."""
        self._stopping.set()
        for event in self._senders.values():
            event.set()
        supervisor = self.alerts.metrics.supervisor
        await supervisor.stop(DISPATCH_LOOP)
        if self._sending:
            await asyncio.wait(self._sending.values(), timeout=STOP_GRACE_S)
            await supervisor.stop(*self._sending)
        logging.getLogger("apprise").removeFilter(self._mask)

    # ---- deciding ------------------------------------------------------------------------------

    async def _current(self, now: float) -> list[Notice]:
        """Firing alerts (muted ones marked) and resolved ones a receiver still has to hear about."""
        firing = [a for a in self.alerts.lifecycle.alerts.values() if a.status == "firing" and a.fired_at is not None]
        labelled = [(a.id, {**a.labels, "rule": a.rule, "severity": a.severity}) for a in firing]
        muted = set(self.alerts.inhibitors())
        muted |= {i for i, labels in labelled if silencing(labels, self.alerts.silences, now)}
        seen = {
            alert.id: Notice(
                alert.id, labels, True, self._fired(alert, now), alert.acknowledged_by is not None, alert.id in muted
            )
            for alert, (_, labels) in zip(firing, labelled, strict=False)
            if alert.fired_at is not None
        }
        self._rehearsed = {i: at for i, at in self._rehearsed.items() if i in seen}
        told = {i for entry in self.log.values() for i in entry.told}
        unknown = []
        for alert_id in told - set(seen) - set(self._resolved):
            last = self._seen.get(alert_id)
            if last is None:
                unknown.append(alert_id)
            else:
                self._resolved[alert_id] = Notice(alert_id, last.labels, False, last.fired_at, last.acknowledged)
        if unknown:  # resolved while this process was not looking (before a restart)
            async with self.pool.acquire() as conn:
                for row in await outbox.resolved_alerts(conn, unknown):
                    labels = {**json.loads(row["labels"]), "rule": row["rule"], "severity": row["severity"]}
                    self._resolved[row["id"]] = Notice(row["id"], labels, False, row["fired_at"].timestamp())
        for alert_id in set(self._resolved) - told:
            del self._resolved[alert_id]
        self._seen = seen
        return [*seen.values(), *(n for i, n in self._resolved.items() if i not in seen)]

    def _fired(self, alert: Alert, now: float) -> float:
        """When the alert fired on the wall clock (escalation counts from it): a live alert's ``fired_at``; an alert
        of a replayed night fired at the night's time (weeks ago, or hours ahead at 60x), so when delivery first
        saw it firing (after a restart, when it looked again)."""
        if clock_of(alert.labels) == "live" and alert.fired_at is not None:
            return alert.fired_at
        return self._rehearsed.setdefault(alert.id, now)

    async def _dispatch_loop(self, progress: Progress) -> None:
        wake_at: float | None = None
        while True:
            progress()
            timeout = PLAN_EVERY_S if wake_at is None else min(PLAN_EVERY_S, max(0.0, wake_at - self.clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            if not self.alerts.settled:
                continue
            now = self.clock()
            flushes, wake_at = self.dispatcher.plan(await self._current(now), self.log, now)
            for flush in flushes:
                await self._store(flush)

    async def _store(self, flush: Flush) -> None:
        try:
            async with self.pool.acquire() as conn:
                messages = await self._messages(conn, flush) if flush.send else []
                await outbox.store_flush(conn, flush, messages)
        except outbox.LogConflict:
            log.warning("notification log changed underneath; reloading it", extra={"group": list(flush.group)})
            self.dispatcher.forget(flush.group)
            async with self.pool.acquire() as conn:
                self.log = await outbox.load_log(conn)
            return
        except Exception as exc:
            self.dispatcher.forget(flush.group)  # not stored: decided again on the next look
            if not database_unavailable(exc):
                raise
            log.warning("notification not stored yet (database unavailable): %r", exc)
            return
        self.log[flush.group] = flush.entry
        for message in messages:
            self._senders[(message.contact_point, message.url_id)].set()

    async def _messages(self, conn: asyncpg.Connection, flush: Flush) -> list[outbox.Message]:
        """The flush's message for each URL of its contact point, written from the alerts as stored."""
        point = self.routing.contact_points[flush.receiver]
        texts = await outbox.alert_texts(conn, [n.id for n in (*flush.firing, *flush.resolved)])
        firing = [(texts.get(n.id, AlertText()), n.id in flush.new, n.acknowledged) for n in flush.firing]
        resolved = [texts.get(n.id, AlertText()) for n in flush.resolved]
        title, body = compose_group(
            flush.kind, flush.severity, flush.group[2], firing, resolved, point.language, self.public_url
        )
        kind = channels.notify_type(flush.severity, resolved=flush.kind == "resolved")
        return [
            outbox.Message(flush.receiver, identity, title, body, kind)
            for name, identity in self._urls
            if name == flush.receiver
        ]

    # ---- sending -------------------------------------------------------------------------------

    def _moot(self, pending: outbox.Pending) -> bool:
        """A repeat or escalation whose alerts are all acknowledged or resolved has nothing left to say."""
        if pending.kind not in MOOT_KINDS:
            return False
        firing = {a.id: a for a in self.alerts.lifecycle.alerts.values() if a.status == "firing"}
        return not any(i in firing and firing[i].acknowledged_by is None for i in pending.alert_ids)

    async def _send_loop(self, progress: Progress, name: str, identity: str) -> None:
        """Ends (normally) once the service stops."""
        wake, url = self._senders[(name, identity)], self._urls[(name, identity)]
        while not self._stopping.is_set():
            wake.clear()
            async with self.pool.acquire() as conn:
                due = await outbox.next_due(conn, name, identity)
                if isinstance(due, outbox.Pending) and self._moot(due):
                    await outbox.cancel(conn, due, "acknowledged or resolved before it was sent")
                    continue
            progress()
            if not isinstance(due, outbox.Pending):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), IDLE_CHECK_S if due is None else due)
                continue
            outcome = await channels.send(url, due.title, due.body, due.notify_type)
            telemetry.NOTIFICATION_SECONDS.labels(contact_point=name).observe(outcome.duration_ms / 1000)
            retry_in: float | None = None
            if not outcome.ok:
                retry_in = channels.retry_delay(due.attempts + 1)
                if due.age_s + retry_in > channels.GIVE_UP_AFTER_S:
                    retry_in = None
                log.warning(
                    "notification not delivered",
                    extra={
                        "contact_point": name,
                        "notification": due.id,
                        "attempt": due.attempts + 1,
                        "error": outcome.error,
                        "gave_up": retry_in is None,
                    },
                )
            result = "delivered" if outcome.ok else "failed" if retry_in is not None else "gave_up"
            telemetry.NOTIFICATION_ATTEMPTS.labels(contact_point=name, outcome=result).inc()
            await self._record(due, outcome, retry_in)

    async def _record(self, pending: outbox.Pending, outcome: channels.Outcome, retry_in: float | None) -> None:
        """Write the attempt down; keep trying while the database is away (a delivered message must
        not stay pending, or it would be sent again)."""
        while True:
            try:
                async with self.pool.acquire() as conn:
                    await outbox.record_attempt(conn, pending, outcome.ok, outcome.duration_ms, outcome.error, retry_in)
                return
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                log.warning("delivery attempt not recorded yet (database unavailable): %r", exc)
                await asyncio.sleep(DATABASE_RETRY_S)
