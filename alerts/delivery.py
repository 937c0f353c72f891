"""Alert delivery at the edge: runs the dispatcher on the live alerts, stores its decisions, sends them.

The dispatch loop looks at the alerts whenever they change (a transition, an
acknowledgment, a silence) and at least every ``PLAN_EVERY_S``; each flush is
written to the outbox before anything is sent. One sender per Apprise URL
takes that URL's messages in order, retries with backoff and jitter, and
records every attempt, so a channel that is down delays only itself. After a
restart the log and the outbox are read back: decided messages are still
sent, delivered ones are not sent again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import asyncpg

from alerts import channels, outbox
from alerts.dispatch import Dispatcher, Flush, GroupId, LogEntry, Notice
from alerts.inhibit import DEFAULT_INHIBIT_RULES, inhibited
from alerts.live import AlertService
from alerts.messages import compose_group
from alerts.routing import Routing, expand_environment
from alerts.silences import silencing
from app import telemetry

log = logging.getLogger(__name__)

PLAN_EVERY_S = 1.0
"""Look at the groups at least this often (silences expiring, escalation steps coming due)."""
IDLE_CHECK_S = 30.0
"""A sender with nothing to do still looks at the outbox this often (rows written by another process)."""
DATABASE_RETRY_S = 2.0
DATABASE_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


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
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _senders: dict[tuple[str, int], asyncio.Event] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dispatcher = Dispatcher(self.routing)

    async def start(self) -> None:
        async with self.pool.acquire() as conn:
            self.log = await outbox.load_log(conn)
            told = sorted({i for entry in self.log.values() for i in entry.firing})
            for row in await outbox.resolved_alerts(conn, told):
                labels = {**json.loads(row["labels"]), "rule": row["rule"], "severity": row["severity"]}
                self._resolved[row["id"]] = Notice(row["id"], labels, False, row["fired_at"].timestamp())
        self.alerts.on_change(self._wake.set)
        self._tasks.append(asyncio.create_task(self._dispatch_loop(), name="delivery-dispatch"))
        for name, point in self.routing.contact_points.items():
            for index, url in enumerate(point.urls):
                self._senders[(name, index)] = asyncio.Event()
                self._tasks.append(
                    asyncio.create_task(self._send_loop(name, index, expand_environment(url)), name=f"delivery-{name}-{index}")
                )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- deciding ------------------------------------------------------------------------------

    def _current(self, now: float) -> list[Notice]:
        """Firing alerts (muted ones marked) and resolved ones a receiver still has to hear about."""
        firing = [a for a in self.alerts.lifecycle.alerts.values() if a.status == "firing" and a.fired_at is not None]
        labelled = [(a.id, {**a.labels, "rule": a.rule, "severity": a.severity}) for a in firing]
        muted = inhibited(labelled, (*DEFAULT_INHIBIT_RULES, *self.alerts.rules.inhibit))
        muted |= {i for i, labels in labelled if silencing(labels, self.alerts.silences, now)}
        seen = {
            alert.id: Notice(alert.id, labels, True, alert.fired_at, alert.acknowledged_by is not None, alert.id in muted)
            for alert, (_, labels) in zip(firing, labelled)
            if alert.fired_at is not None
        }
        told = {i for entry in self.log.values() for i in entry.firing}
        for alert_id in told - set(seen) - set(self._resolved):
            if alert_id in self._seen:
                last = self._seen[alert_id]
                self._resolved[alert_id] = Notice(alert_id, last.labels, False, last.fired_at, last.acknowledged)
        for alert_id in set(self._resolved) - told:
            del self._resolved[alert_id]
        self._seen = seen
        return [*seen.values(), *(n for i, n in self._resolved.items() if i not in seen)]

    async def _dispatch_loop(self) -> None:
        wake_at: float | None = None
        while True:
            timeout = PLAN_EVERY_S if wake_at is None else min(PLAN_EVERY_S, max(0.0, wake_at - self.clock()))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            now = self.clock()
            flushes, wake_at = self.dispatcher.plan(self._current(now), self.log, now)
            for flush in flushes:
                await self._store(flush)

    async def _store(self, flush: Flush) -> None:
        try:
            async with self.pool.acquire() as conn:
                messages = await self._messages(conn, flush) if flush.send else []
                await outbox.store_flush(conn, flush, messages)
        except outbox.LogConflict:
            log.warning("notification log changed underneath; reloading it", extra={"group": list(flush.group)})
            async with self.pool.acquire() as conn:
                self.log = await outbox.load_log(conn)
            self.dispatcher.forget(flush.group)
            return
        except DATABASE_ERRORS as exc:
            log.warning("notification not stored yet (database unavailable): %s", exc)
            self.dispatcher.forget(flush.group)
            return
        self.log[flush.group] = flush.entry
        for message in messages:
            self._senders[(message.contact_point, message.url_index)].set()

    async def _messages(self, conn: asyncpg.Connection, flush: Flush) -> list[outbox.Message]:
        """The flush's message for each URL of its contact point, written from the alerts as stored."""
        point = self.routing.contact_points[flush.receiver]
        texts = await outbox.alert_texts(conn, [n.id for n in (*flush.firing, *flush.resolved)])
        firing = [(texts.get(n.id, {}), n.id in flush.new, n.acknowledged) for n in flush.firing]
        resolved = [texts.get(n.id, {}) for n in flush.resolved]
        title, body = compose_group(flush.kind, flush.severity, flush.group[2], firing, resolved, point.language, self.public_url)
        kind = channels.notify_type(flush.severity, resolved=flush.kind == "resolved")
        return [outbox.Message(flush.receiver, index, title, body, kind) for index in range(len(point.urls))]

    # ---- sending -------------------------------------------------------------------------------

    async def _send_loop(self, name: str, index: int, url: str) -> None:
        wake = self._senders[(name, index)]
        while True:
            try:
                async with self.pool.acquire() as conn:
                    pending = await outbox.head(conn, name, index)
            except DATABASE_ERRORS as exc:
                log.warning("outbox not readable (database unavailable): %s", exc)
                await asyncio.sleep(DATABASE_RETRY_S)
                continue
            now = self.clock()
            if pending is None or pending.next_attempt_at > now:
                wait = IDLE_CHECK_S if pending is None else pending.next_attempt_at - now
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass
                continue
            outcome = await channels.send(url, pending.title, pending.body, pending.notify_type)
            telemetry.NOTIFICATION_SECONDS.labels(contact_point=name).observe(outcome.duration_ms / 1000)
            retry_at: float | None = None
            if not outcome.ok:
                retry_at = self.clock() + channels.retry_delay(pending.attempts + 1)
                if retry_at - pending.created_at > channels.GIVE_UP_AFTER_S:
                    retry_at = None
                log.warning(
                    "notification not delivered",
                    extra={"contact_point": name, "url_index": index, "notification": pending.id,
                           "attempt": pending.attempts + 1, "error": outcome.error, "gave_up": retry_at is None},
                )
            result = "delivered" if outcome.ok else "failed" if retry_at is not None else "gave_up"
            telemetry.NOTIFICATION_ATTEMPTS.labels(contact_point=name, outcome=result).inc()
            await self._record(pending, outcome, retry_at)

    async def _record(self, pending: outbox.Pending, outcome: channels.Outcome, retry_at: float | None) -> None:
        """Write the attempt down; keep trying while the database is away (a delivered message must
        not stay pending, or it would be sent again)."""
        while True:
            try:
                async with self.pool.acquire() as conn:
                    await outbox.record_attempt(conn, pending, outcome.ok, outcome.duration_ms, outcome.error, retry_at)
                return
            except DATABASE_ERRORS as exc:
                log.warning("delivery attempt not recorded yet (database unavailable): %s", exc)
                await asyncio.sleep(DATABASE_RETRY_S)
