"""Alerts, transitions and silences in PostgreSQL (parameterized SQL only)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from alerts.evaluation.lifecycle import Alert, Transition
from alerts.evaluation.messages import AlertText
from alerts.evaluation.rehearsal import NightAlert, ordered
from alerts.evaluation.severity import MOST_SEVERE_FIRST, Severity, most_severe
from alerts.evaluation.silences import Matcher, Silence
from alerts.evaluation.views import NO_CAMPAIGN_TIMEZONE, REHEARSAL_MARKS, AlertTransition, StoredAlert
from app.core.telemetry import SILENCES_UNREADABLE

log = logging.getLogger(__name__)

ALERT_COLUMNS = (
    "id, fingerprint, rule, campaign, labels, status, severity, active_tiers, pending_since, fired_at, resolved_at, "
    "flapping, values, summary_en, summary_zh, runbook_en, runbook_zh, link, ack_by, ack_at, ack_comment, updated_at"
)

NIGHT_COLUMNS = (
    "CASE WHEN a.labels @> $1::jsonb THEN 'replay' ELSE 'live' END AS clock,"
    " coalesce((SELECT c.definition->>'timezone' FROM campaigns c WHERE c.id = a.campaign), $2) AS timezone"
)
"""The clock an alert's times are on and its campaign's time zone (``alerts.evaluation.views``); $1 and $2 are
``NIGHT_PARAMETERS``."""
NIGHT_PARAMETERS = (json.dumps(REHEARSAL_MARKS), NO_CAMPAIGN_TIMEZONE)

_reported_unreadable: set[str] = set()
"""Ids of the stored silences found unreadable so far in this process: each is logged and counted once."""

STREAM_ORDER_LOCK = 0x5741_524F_4F4D_0002
"""Transaction-scoped advisory lock held while writing transitions: ``seq`` is taken at insert but seen at
commit, so writers take turns and a stream reading ``seq > last`` never skips one committed late."""


def _time(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, allow_nan=False) if value is not None else "null"


def clean_values(values: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN or infinity; such values are stored as null."""
    return {
        k: (None if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))) else v)
        for k, v in values.items()
    }


async def record(
    conn: asyncpg.Connection, transitions: list[Transition], describe: Callable[[Transition], AlertText]
) -> list[int]:
    """Persist transitions atomically; return their stream sequence numbers."""
    seqs: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", STREAM_ORDER_LOCK)
        for t in transitions:
            alert = t.alert
            text = describe(t)
            values = clean_values(t.values)
            await conn.execute(
                "INSERT INTO alerts (id, fingerprint, rule, campaign, labels, status, severity, active_tiers,"
                " pending_since, fired_at, resolved_at, flapping, flips, values, summary_en, summary_zh, runbook_en,"
                " runbook_zh, link)"
                " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15, $16, $17,"
                " $18, $19)"
                " ON CONFLICT (id) DO UPDATE SET status = excluded.status, severity = excluded.severity,"
                " active_tiers = excluded.active_tiers, resolved_at = excluded.resolved_at,"
                " flapping = excluded.flapping,"
                " flips = excluded.flips, values = excluded.values, summary_en = excluded.summary_en,"
                " summary_zh = excluded.summary_zh, updated_at = now()",
                alert.id,
                alert.fingerprint,
                alert.rule,
                alert.labels.get("campaign"),
                _json(alert.labels),
                "resolved" if t.kind == "resolved" else "firing",
                t.severity,
                sorted(alert.active),
                _time(alert.pending_since),
                _time(alert.fired_at if alert.fired_at is not None else t.at),
                _time(alert.resolved_at) if t.kind == "resolved" else None,
                alert.flapping,
                alert.flips,
                _json(values),
                text.summary_en,
                text.summary_zh,
                text.runbook_en,
                text.runbook_zh,
                text.link,
            )
            seqs.append(
                await conn.fetchval(
                    "INSERT INTO alert_transitions (alert_id, at, kind, severity, previous_severity, flapping, values)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING seq",
                    alert.id,
                    _time(t.at),
                    t.kind,
                    t.severity,
                    t.previous_severity,
                    t.flapping,
                    _json(values),
                )
            )
    return seqs


FIRED_VALUES = (
    "(SELECT t.values::text FROM alert_transitions t WHERE t.alert_id = a.id AND t.kind = 'firing'"
    " ORDER BY t.seq LIMIT 1) AS fired_values"
)
"""An alert's values when it fired (its first transition)."""
SEVERITIES = (
    "(SELECT array_agg(t.severity) FROM alert_transitions t WHERE t.alert_id = a.id AND t.kind <> 'acknowledged')"
    " AS severities"
)
"""Every severity an alert has fired, escalated or resolved at."""


LIFECYCLE_COLUMNS = (
    "a.id, a.fingerprint, a.rule, a.labels::text, a.status, a.severity, a.active_tiers, a.pending_since, a.fired_at,"
    f" a.resolved_at, a.flapping, a.flips, a.values::text, a.ack_by, a.ack_at, a.ack_comment, {FIRED_VALUES},"
    f" {SEVERITIES}"
)
"""What ``_lifecycle_alerts`` reads of an alert row."""


async def firing(conn: asyncpg.Connection) -> list[Alert]:
    """Firing alerts as the lifecycle keeps them, so a restarted engine neither re-fires nor forgets them."""
    return _lifecycle_alerts(await conn.fetch(f"SELECT {LIFECYCLE_COLUMNS} FROM alerts a WHERE a.status = 'firing'"))


async def unacknowledged_emergencies(conn: asyncpg.Connection, since: float) -> list[Alert]:
    """Resolved alerts that reached emergency, nobody acknowledged, and that resolved (on the wall clock, the
    row's ``updated_at``: a rehearsal's ``resolved_at`` is on its night's) after ``since``."""
    rows = await conn.fetch(
        f"SELECT {LIFECYCLE_COLUMNS} FROM alerts a WHERE a.status = 'resolved' AND a.ack_by IS NULL"
        " AND a.updated_at > $1 AND EXISTS (SELECT 1 FROM alert_transitions t WHERE t.alert_id = a.id"
        " AND t.severity = $2)",
        _time(since),
        Severity.EMERGENCY.value,
    )
    return _lifecycle_alerts(rows)


def _lifecycle_alerts(rows: list[asyncpg.Record]) -> list[Alert]:
    return [
        Alert(
            id=r["id"],
            fingerprint=r["fingerprint"],
            rule=r["rule"],
            labels=json.loads(r["labels"]),
            status="resolved" if r["status"] == "resolved" else "firing",
            resolved_at=r["resolved_at"].timestamp() if r["resolved_at"] else None,
            severity=Severity(r["severity"]),
            active=set(r["active_tiers"]),
            pending_since=r["pending_since"].timestamp(),
            fired_at=r["fired_at"].timestamp(),
            values=json.loads(r["values"]),
            fired_values=json.loads(r["fired_values"] or r["values"]),
            peak=Severity(most_severe([r["severity"], *(r["severities"] or [])])),
            flips=list(r["flips"]),
            flapping=r["flapping"],
            acknowledged_by=r["ack_by"],
            acknowledged_at=r["ack_at"].timestamp() if r["ack_at"] else None,
            ack_comment=r["ack_comment"],
        )
        for r in rows
    ]


async def acknowledgments(
    conn: asyncpg.Connection, ids: list[str]
) -> dict[str, tuple[str | None, float | None, str | None]]:
    """Who acknowledged each of these alerts, when and why (all None when nobody has); an id not stored is absent."""
    rows = await conn.fetch("SELECT id, ack_by, ack_at, ack_comment FROM alerts WHERE id = ANY($1)", ids)
    return {r["id"]: (r["ack_by"], r["ack_at"].timestamp() if r["ack_at"] else None, r["ack_comment"]) for r in rows}


async def acknowledge(
    conn: asyncpg.Connection, alert_id: str, who: str, comment: str | None, at: float
) -> tuple[asyncpg.Record, int] | None:
    """Record who acknowledged the alert and when (the engine's clock, like every other transition), as an
    ``acknowledged`` transition in the stream; returns the alert row and the transition's seq, or None for
    an unknown alert."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", STREAM_ORDER_LOCK)
        row = await conn.fetchrow(
            f"UPDATE alerts SET ack_by = $2, ack_at = $4, ack_comment = $3, updated_at = now()"
            f" WHERE id = $1 RETURNING {ALERT_COLUMNS}",
            alert_id,
            who,
            comment,
            _time(at),
        )
        if row is None:
            return None
        seq = await conn.fetchval(
            "INSERT INTO alert_transitions (alert_id, at, kind, severity, previous_severity, flapping, values)"
            " VALUES ($1, $5, 'acknowledged', $2, NULL, $3, $4::jsonb) RETURNING seq",
            alert_id,
            row["severity"],
            row["flapping"],
            _json({"by": who, "comment": comment}),
            _time(at),
        )
    return row, seq


async def alerts(
    conn: asyncpg.Connection,
    *,
    status: str | None,
    severity: Severity | None,
    campaign: str | None,
    rule: str | None,
    limit: int,
) -> list[StoredAlert]:
    columns = ", ".join(f"a.{name}" for name in ALERT_COLUMNS.split(", "))
    rows = await conn.fetch(
        f"SELECT {columns}, {NIGHT_COLUMNS} FROM alerts a WHERE ($3::text IS NULL OR a.status = $3)"
        " AND ($4::text IS NULL OR a.severity = $4)"
        " AND ($5::text IS NULL OR a.campaign = $5) AND ($6::text IS NULL OR a.rule = $6)"
        " ORDER BY array_position($8::text[], a.severity), a.fired_at DESC LIMIT $7",
        *NIGHT_PARAMETERS,
        status,
        severity,
        campaign,
        rule,
        limit,
        [s.value for s in MOST_SEVERE_FIRST],
    )
    return [msgspec.convert(_decoded(row), StoredAlert) for row in rows]


async def recently_resolved(
    conn: asyncpg.Connection, within_s: float, limit: int, also: list[str] | None = None
) -> list[StoredAlert]:
    """Alerts resolved within the last ``within_s`` seconds on the wall clock (a rehearsal's ``resolved_at`` is on
    its night's clock, so its row's ``updated_at`` tells), and the resolved ones of ``also`` (ids) however long ago,
    newest first, with their stored values and summaries."""
    columns = ", ".join(f"a.{name}" for name in ALERT_COLUMNS.split(", "))
    rows = await conn.fetch(
        f"SELECT {columns}, {NIGHT_COLUMNS} FROM alerts a WHERE a.status = 'resolved'"
        " AND ((CASE WHEN a.labels @> $1::jsonb THEN a.updated_at ELSE a.resolved_at END)"
        " > now() - make_interval(secs => $3) OR a.id = ANY($5::text[])) ORDER BY a.updated_at DESC LIMIT $4",
        *NIGHT_PARAMETERS,
        within_s,
        limit,
        also or [],
    )
    return [msgspec.convert(_decoded(row), StoredAlert) for row in rows]


async def history(
    conn: asyncpg.Connection, *, since: datetime | None, until: datetime | None, after_seq: int, limit: int
) -> list[AlertTransition]:
    """Transitions after ``after_seq`` in ``seq`` order, each with its alert's rule, labels and texts."""
    rows = await conn.fetch(
        "SELECT t.seq, t.alert_id, t.at, t.kind, t.severity, t.previous_severity, t.flapping, t.values::text AS values,"
        " a.rule, a.campaign, a.labels::text AS labels, a.fired_at, a.summary_en, a.summary_zh, a.runbook_en,"
        f" a.runbook_zh, a.link, {NIGHT_COLUMNS}, {FIRED_VALUES}"
        " FROM alert_transitions t JOIN alerts a ON a.id = t.alert_id"
        " WHERE t.seq > $3 AND ($4::timestamptz IS NULL OR t.at >= $4) AND ($5::timestamptz IS NULL OR t.at < $5)"
        " ORDER BY t.seq LIMIT $6",
        *NIGHT_PARAMETERS,
        after_seq,
        since,
        until,
        limit,
    )
    return [msgspec.convert(_decoded(row), AlertTransition) for row in rows]


async def campaign_alerts(conn: asyncpg.Connection, campaign: str) -> list[NightAlert]:
    """Every alert of ``campaign`` as a rehearsal's table shows it: the highest severity of its transitions, and
    when it fired and resolved."""
    rows = await conn.fetch(
        "SELECT a.rule, a.labels::text, a.fired_at, a.resolved_at, array_agg(t.severity) AS severities"
        " FROM alerts a JOIN alert_transitions t ON t.alert_id = a.id WHERE a.campaign = $1"
        " GROUP BY a.id",
        campaign,
    )
    return ordered(
        NightAlert(
            r["rule"],
            json.loads(r[1]),
            Severity(most_severe(r["severities"])),
            r["fired_at"].timestamp(),
            r["resolved_at"].timestamp() if r["resolved_at"] is not None else None,
        )
        for r in rows
    )


async def delete_campaign_alerts(conn: asyncpg.Connection, campaign: str) -> int:
    """Delete every alert of ``campaign`` with its transitions (a rehearsal run again from scratch); how many."""
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM alert_transitions WHERE alert_id IN (SELECT id FROM alerts WHERE campaign = $1)", campaign
        )
        deleted = await conn.execute("DELETE FROM alerts WHERE campaign = $1", campaign)
    return int(deleted.split()[-1])


def _decoded(row: asyncpg.Record) -> dict[str, Any]:
    """The row with its JSON columns (``labels``, ``values``, ``fired_values``) decoded; an alert without a firing
    transition has no fired values."""
    out = dict(row)
    if "fired_values" in out and out["fired_values"] is None:
        del out["fired_values"]
    for key in ("labels", "values", "fired_values"):
        if isinstance(out.get(key), str):
            out[key] = msgspec.json.decode(out[key])
    return out


async def save_silence(conn: asyncpg.Connection, silence: Silence) -> None:
    await conn.execute(
        "INSERT INTO silences (id, matchers, starts_at, ends_at, reason, created_by)"
        " VALUES ($1, $2::jsonb, $3, $4, $5, $6)",
        silence.id,
        _json(msgspec.to_builtins(silence.matchers)),
        _time(silence.starts_at),
        _time(silence.ends_at),
        silence.reason,
        silence.created_by,
    )


async def expire_silence(conn: asyncpg.Connection, silence_id: str) -> bool:
    result = await conn.execute(
        "UPDATE silences SET ends_at = greatest(starts_at + interval '1 millisecond', now())"
        " WHERE id = $1 AND ends_at > now()",
        silence_id,
    )
    return result == "UPDATE 1"


async def silences(conn: asyncpg.Connection, include_expired: bool = False) -> list[Silence]:
    """The stored silences; one that cannot be read, for any reason, is skipped, never fatal: reading stored
    state must not stop the server from starting. It is logged and counted once per process (silences are
    re-read every few seconds)."""
    rows = await conn.fetch(
        "SELECT id, matchers::text, starts_at, ends_at, reason, created_by FROM silences"
        " WHERE $1 OR ends_at > now() ORDER BY starts_at",
        include_expired,
    )
    found: list[Silence] = []
    for r in rows:
        try:
            found.append(
                Silence(
                    id=r["id"],
                    matchers=msgspec.json.decode(r["matchers"], type=tuple[Matcher, ...]),
                    starts_at=r["starts_at"].timestamp(),
                    ends_at=r["ends_at"].timestamp(),
                    reason=r["reason"],
                    created_by=r["created_by"],
                )
            )
        except Exception as exc:  # msgspec passes on some errors of a regex's compilation as they are
            _report_unreadable(r["id"], exc)
    return found


def _report_unreadable(silence_id: str, exc: Exception) -> None:
    if silence_id in _reported_unreadable:
        return
    _reported_unreadable.add(silence_id)
    SILENCES_UNREADABLE.inc()
    log.error("silence %s is unreadable and does not apply (expire it and create it again): %r", silence_id, exc)
