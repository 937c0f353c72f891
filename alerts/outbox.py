"""The durable side of notifications in PostgreSQL: the notification log, the outbox, delivery attempts.

A flush is stored in one transaction: the receiver's log entry (guarded by
its flush counter, so a decision is never taken twice) and one outbox row
per Apprise URL of the contact point. Senders take rows per URL in order and
record every attempt. Parameterized SQL only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import asyncpg

from alerts.dispatch import Flush, GroupId, LogEntry


class LogConflict(Exception):
    """The log entry changed since it was read (another decision won); reload and plan again."""


@dataclass(frozen=True)
class Message:
    """One outgoing message to one URL of a contact point."""

    contact_point: str
    url_index: int
    title: str
    body: str
    notify_type: str


@dataclass(frozen=True)
class Pending:
    id: int
    attempts: int
    next_attempt_at: float
    created_at: float
    title: str
    body: str
    notify_type: str


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def dedup_key(group: GroupId, flush_number: int, url_index: int) -> str:
    """Identity of one message: the same flush of the same group to the same URL is stored once."""
    lane, receiver, group_key = group
    return f"{lane}|{receiver}|{group_key}|{flush_number}|{url_index}"


async def load_log(conn: asyncpg.Connection) -> dict[GroupId, LogEntry]:
    rows = await conn.fetch("SELECT lane, receiver, group_key, firing, sent_at, flushes FROM notification_log")
    return {
        (r["lane"], r["receiver"], r["group_key"]): LogEntry(frozenset(r["firing"]), r["sent_at"].timestamp(), r["flushes"])
        for r in rows
    }


async def store_flush(conn: asyncpg.Connection, flush: Flush, messages: list[Message]) -> list[int]:
    """Persist the flush's log entry and its messages atomically; returns the new outbox ids."""
    lane, receiver, group_key = flush.group
    previous = flush.previous.flushes if flush.previous else 0
    async with conn.transaction():
        status = await conn.execute(
            "INSERT INTO notification_log (lane, receiver, group_key, firing, sent_at, flushes)"
            " VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (lane, receiver, group_key) DO UPDATE SET firing = excluded.firing,"
            " sent_at = excluded.sent_at, flushes = excluded.flushes WHERE notification_log.flushes = $7",
            lane,
            receiver,
            group_key,
            sorted(flush.entry.firing),
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
                "INSERT INTO notifications (dedup_key, contact_point, url_index, lane, group_key, kind, severity,"
                " alert_ids, title, body, notify_type) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                " ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
                dedup_key(flush.group, flush.entry.flushes, message.url_index),
                message.contact_point,
                message.url_index,
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


async def head(conn: asyncpg.Connection, contact_point: str, url_index: int) -> Pending | None:
    """The oldest undelivered message of one URL: messages to one place go out in order."""
    row = await conn.fetchrow(
        "SELECT id, attempts, next_attempt_at, created_at, title, body, notify_type FROM notifications"
        " WHERE status = 'pending' AND contact_point = $1 AND url_index = $2 ORDER BY id LIMIT 1",
        contact_point,
        url_index,
    )
    if row is None:
        return None
    return Pending(
        row["id"], row["attempts"], row["next_attempt_at"].timestamp(), row["created_at"].timestamp(),
        row["title"], row["body"], row["notify_type"],
    )


async def record_attempt(
    conn: asyncpg.Connection,
    pending: Pending,
    ok: bool,
    duration_ms: float,
    error: str | None,
    next_attempt_at: float | None,
) -> None:
    """Keep the attempt; the message is delivered (ok), retried at ``next_attempt_at``, or failed (None)."""
    attempt = pending.attempts + 1
    status = "delivered" if ok else "pending" if next_attempt_at is not None else "failed"
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO notification_attempts (notification_id, attempt, ok, duration_ms, error) VALUES ($1, $2, $3, $4, $5)",
            pending.id,
            attempt,
            ok,
            duration_ms,
            error,
        )
        await conn.execute(
            "UPDATE notifications SET attempts = $2, status = $3, last_error = $4,"
            " next_attempt_at = coalesce($5, next_attempt_at),"
            " delivered_at = CASE WHEN $3 = 'delivered' THEN now() END WHERE id = $1",
            pending.id,
            attempt,
            status,
            error if not ok else None,
            _time(next_attempt_at) if next_attempt_at is not None else None,
        )


async def resolved_alerts(conn: asyncpg.Connection, ids: list[str]) -> list[asyncpg.Record]:
    """Alerts among ``ids`` that are no longer firing (resolved while no one was looking, e.g. during a restart)."""
    return await conn.fetch(
        "SELECT id, rule, labels::text AS labels, severity, fired_at FROM alerts WHERE id = ANY($1) AND status = 'resolved'",
        ids,
    )


async def alert_texts(conn: asyncpg.Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    """What a message says about each alert: summaries, runbooks, link, values and severity, as stored."""
    rows = await conn.fetch(
        "SELECT id, severity, values::text AS values, summary_en, summary_zh, runbook_en, runbook_zh, link"
        " FROM alerts WHERE id = ANY($1)",
        ids,
    )
    return {r["id"]: {**dict(r), "values": json.loads(r["values"])} for r in rows}


async def notifications(
    conn: asyncpg.Connection, *, status: str | None, contact_point: str | None, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first, each with its attempts (for ``GET /v1/notifications``)."""
    rows = await conn.fetch(
        "SELECT id, contact_point, url_index, lane, group_key, kind, severity, alert_ids, title, status, attempts,"
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
    by_id: dict[int, list[dict[str, Any]]] = {}
    for a in attempts:
        by_id.setdefault(a["notification_id"], []).append(
            {"attempt": a["attempt"], "at": a["at"], "ok": a["ok"], "duration_ms": a["duration_ms"], "error": a["error"]}
        )
    return [{**dict(r), "attempt_log": by_id.get(r["id"], [])} for r in rows]
