"""The durable side of notifications in PostgreSQL: the notification log, the outbox, delivery attempts.

A flush is stored in one transaction: the receiver's log entry (guarded by
its flush counter, so a decision is never taken twice) and one outbox row
per Apprise URL of the contact point. Senders take rows per URL in order and
record every attempt. Parameterized SQL only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import msgspec

from alerts.evaluation.messages import AlertText
from alerts.evaluation.severity import Severity
from alerts.evaluation.views import clock_of
from alerts.notify.dispatch import Flush, GroupId, LogEntry


class LogConflict(Exception):
    """The log entry changed since it was read (another decision won); reload and plan again."""


@dataclass(frozen=True)
class Message:
    """One outgoing message to one URL (named by ``url_id``) of a contact point."""

    contact_point: str
    url_id: str
    title: str
    body: str
    notify_type: str


@dataclass(frozen=True)
class Pending:
    id: int
    kind: str
    alert_ids: list[str]
    attempts: int
    age_s: float
    title: str
    body: str
    notify_type: str


class Attempt(msgspec.Struct):
    """One try at delivering a notification."""

    attempt: int
    at: datetime
    ok: bool
    duration_ms: float
    error: str | None


class Notification(msgspec.Struct):
    """One outgoing message to one URL of a contact point, as logged, with its attempts."""

    id: int
    contact_point: str
    url_id: str
    lane: str
    group_key: str
    kind: str
    severity: Severity
    alert_ids: list[str]
    title: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[Attempt]


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def dedup_key(group: GroupId, flush_number: int, url_id: str) -> str:
    """Identity of one message: the same flush of the same group to the same URL is stored once."""
    lane, receiver, group_key = group
    return f"{lane}|{receiver}|{group_key}|{flush_number}|{url_id}"


async def load_log(conn: asyncpg.Connection) -> dict[GroupId, LogEntry]:
    rows = await conn.fetch(
        "SELECT lane, receiver, group_key, told::text AS told, sent_at, flushes FROM notification_log"
    )
    return {
        (r["lane"], r["receiver"], r["group_key"]): LogEntry(
            {alert_id: (at, severity) for alert_id, (at, severity) in json.loads(r["told"]).items()},
            r["sent_at"].timestamp(),
            r["flushes"],
        )
        for r in rows
    }


async def store_flush(conn: asyncpg.Connection, flush: Flush, messages: list[Message]) -> list[int]:
    """Persist the flush's log entry and its messages atomically; returns the new outbox ids."""
    lane, receiver, group_key = flush.group
    previous = flush.previous.flushes if flush.previous else 0
    async with conn.transaction():
        status = await conn.execute(
            "INSERT INTO notification_log (lane, receiver, group_key, told, sent_at, flushes)"
            " VALUES ($1, $2, $3, $4::jsonb, $5, $6)"
            " ON CONFLICT (lane, receiver, group_key) DO UPDATE SET told = excluded.told,"
            " sent_at = excluded.sent_at, flushes = excluded.flushes WHERE notification_log.flushes = $7",
            lane,
            receiver,
            group_key,
            json.dumps({alert_id: list(told) for alert_id, told in flush.entry.told.items()}),
            _time(flush.entry.sent_at),
            flush.entry.flushes,
            previous,
        )
        if status != "INSERT 0 1":
            raise LogConflict(f"notification log of {flush.group} changed")
        ids: list[int] = []
        alert_ids = sorted({n.id for n in (*flush.firing, *flush.resolved)})
        for message in messages:
            new_id = await conn.fetchval(
                "INSERT INTO notifications (dedup_key, contact_point, url_id, lane, group_key, kind, severity,"
                " alert_ids, title, body, notify_type) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                " ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
                dedup_key(flush.group, flush.entry.flushes, message.url_id),
                message.contact_point,
                message.url_id,
                lane,
                group_key,
                flush.kind,
                flush.severity,
                alert_ids,
                message.title,
                message.body,
                message.notify_type,
            )
            if new_id is not None:
                ids.append(new_id)
    return ids


async def next_due(conn: asyncpg.Connection, contact_point: str, url_id: str) -> Pending | float | None:
    """The oldest message of one URL that is due now (times by the database's clock); else the seconds
    until the next one is due, or None when nothing is pending. A message waiting out its backoff does
    not hold back newer ones: a message the channel rejects must not delay the next emergency."""
    row = await conn.fetchrow(
        "SELECT id, kind, alert_ids, attempts, extract(epoch FROM now() - created_at) AS age_s, title, body,"
        " notify_type FROM notifications"
        " WHERE status = 'pending' AND contact_point = $1 AND url_id = $2 AND next_attempt_at <= now()"
        " ORDER BY id LIMIT 1",
        contact_point,
        url_id,
    )
    if row is not None:
        return Pending(
            row["id"],
            row["kind"],
            list(row["alert_ids"]),
            row["attempts"],
            float(row["age_s"]),
            row["title"],
            row["body"],
            row["notify_type"],
        )
    wait = await conn.fetchval(
        "SELECT extract(epoch FROM min(next_attempt_at) - now()) FROM notifications"
        " WHERE status = 'pending' AND contact_point = $1 AND url_id = $2",
        contact_point,
        url_id,
    )
    return None if wait is None else max(0.0, float(wait))


async def cancel(conn: asyncpg.Connection, pending: Pending, reason: str) -> None:
    await conn.execute(
        "UPDATE notifications SET status = 'cancelled', last_error = $2 WHERE id = $1 AND status = 'pending'",
        pending.id,
        reason,
    )


async def abandon_unknown(conn: asyncpg.Connection, targets: set[tuple[str, str]]) -> int:
    """Pending messages to URLs no longer configured can never be sent: mark them failed."""
    result = await conn.execute(
        "UPDATE notifications SET status = 'failed', last_error = 'contact point or URL no longer configured'"
        " WHERE status = 'pending' AND NOT (contact_point || '|' || url_id = ANY($1::text[]))",
        [f"{name}|{url_id}" for name, url_id in targets],
    )
    return int(result.split()[-1])


async def record_attempt(
    conn: asyncpg.Connection,
    pending: Pending,
    ok: bool,
    duration_ms: float,
    error: str | None,
    retry_in_s: float | None,
) -> None:
    """Keep the attempt; the message is delivered (ok), retried in ``retry_in_s``, or failed (None)."""
    attempt = pending.attempts + 1
    status = "delivered" if ok else "pending" if retry_in_s is not None else "failed"
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO notification_attempts (notification_id, attempt, ok, duration_ms, error)"
            " VALUES ($1, $2, $3, $4, $5)",
            pending.id,
            attempt,
            ok,
            duration_ms,
            error,
        )
        await conn.execute(
            "UPDATE notifications SET attempts = $2, status = $3, last_error = $4,"
            " next_attempt_at = now() + make_interval(secs => coalesce($5, 0)),"
            " delivered_at = CASE WHEN $3 = 'delivered' THEN now() END WHERE id = $1",
            pending.id,
            attempt,
            status,
            error if not ok else None,
            retry_in_s,
        )


async def resolved_alerts(conn: asyncpg.Connection, ids: list[str]) -> list[asyncpg.Record]:
    """Alerts among ``ids`` that are no longer firing (resolved while no one was looking, e.g. during a restart)."""
    return await conn.fetch(
        "SELECT id, rule, labels::text AS labels, severity, fired_at FROM alerts"
        " WHERE id = ANY($1) AND status = 'resolved'",
        ids,
    )


async def alert_texts(conn: asyncpg.Connection, ids: list[str]) -> dict[str, AlertText]:
    """What a message says about each alert: summaries, runbooks, link, severity and whether it is a rehearsal's,
    as stored."""
    rows = await conn.fetch(
        "SELECT id, severity, summary_en, summary_zh, runbook_en, runbook_zh, link,"
        " labels::text AS labels FROM alerts WHERE id = ANY($1)",
        ids,
    )
    return {
        r["id"]: AlertText(
            summary_en=r["summary_en"],
            summary_zh=r["summary_zh"],
            runbook_en=r["runbook_en"],
            runbook_zh=r["runbook_zh"],
            link=r["link"],
            severity=Severity(r["severity"]),
            rehearsal=clock_of(json.loads(r["labels"])) == "replay",
        )
        for r in rows
    }


async def notifications(
    conn: asyncpg.Connection, *, status: str | None, contact_point: str | None, before_id: int | None, limit: int
) -> list[Notification]:
    """Newest first, each with its attempts (for ``GET /v1/notifications``)."""
    rows = await conn.fetch(
        "SELECT id, contact_point, url_id, lane, group_key, kind, severity, alert_ids, title, status, attempts,"
        " next_attempt_at, last_error, created_at, delivered_at FROM notifications"
        " WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR contact_point = $2)"
        " AND ($3::bigint IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
        status,
        contact_point,
        before_id,
        limit,
    )
    attempts = await conn.fetch(
        "SELECT notification_id, attempt, at, ok, duration_ms, error FROM notification_attempts"
        " WHERE notification_id = ANY($1) ORDER BY notification_id, attempt",
        [r["id"] for r in rows],
    )
    by_id: dict[int, list[Attempt]] = {}
    for a in attempts:
        by_id.setdefault(a["notification_id"], []).append(
            Attempt(attempt=a["attempt"], at=a["at"], ok=a["ok"], duration_ms=a["duration_ms"], error=a["error"])
        )
    return [msgspec.convert({**dict(r), "attempt_log": by_id.get(r["id"], [])}, Notification) for r in rows]


async def prune(conn: asyncpg.Connection, before: datetime) -> tuple[int, int]:
    """Delete settled messages (delivered, failed, cancelled; their attempts go with them) created before
    ``before``, and log entries of groups with nothing firing last sent before it. Pending ones stay."""
    async with conn.transaction():
        messages = await conn.execute("DELETE FROM notifications WHERE status <> 'pending' AND created_at < $1", before)
        entries = await conn.execute("DELETE FROM notification_log WHERE told = '{}'::jsonb AND sent_at < $1", before)
    return int(messages.split()[-1]), int(entries.split()[-1])
