"""What the alert engine shows of an alert: as it holds it (``LiveAlert``), as stored (``StoredAlert``), one of its
transitions (``AlertTransition``), and an acknowledgment. Pure data (msgspec Structs): the API encodes them as they
are, the wall and the websocket read their attributes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from alerts.evaluation.severity import Severity


class AckRecord(msgspec.Struct):
    """Who acknowledged an alert, when (epoch seconds) and why."""

    by: str
    at: float | None
    comment: str | None


class LiveAlert(msgspec.Struct):
    """A firing alert as the engine holds it (times in epoch seconds), with who silences or inhibits it."""

    seq: int | None
    id: str
    transition: str | None
    rule: str
    labels: dict[str, str]
    status: str
    severity: Severity
    previous_severity: Severity | None
    fired_at: float | None
    resolved_at: float | None
    flapping: bool
    values: dict[str, Any]
    acknowledged: AckRecord | None
    summary_en: str
    summary_zh: str
    runbook_en: str
    runbook_zh: str
    link: str
    silenced_by: list[str]
    inhibited_by: list[str]


class StoredAlert(msgspec.Struct):
    """An alert as stored (firing or resolved), as ``status=resolved`` and ``status=all`` list them."""

    id: str
    fingerprint: str
    rule: str
    campaign: str | None
    labels: dict[str, str]
    status: str
    severity: Severity
    active_tiers: list[Severity]
    pending_since: datetime
    fired_at: datetime
    resolved_at: datetime | None
    flapping: bool
    values: dict[str, Any]
    summary_en: str
    summary_zh: str
    runbook_en: str
    runbook_zh: str
    link: str
    ack_by: str | None
    ack_at: datetime | None
    ack_comment: str | None
    updated_at: datetime


class AlertTransition(msgspec.Struct):
    """One change of an alert (fired, escalated, de-escalated, resolved, acknowledged) with the values then."""

    seq: int
    alert_id: str
    at: datetime
    kind: str
    severity: Severity
    previous_severity: Severity | None
    flapping: bool
    values: dict[str, Any]
    rule: str
    campaign: str | None
    labels: dict[str, str]
    fired_at: datetime
    summary_en: str
    summary_zh: str
    runbook_en: str
    runbook_zh: str
    link: str


class AckGiven(msgspec.Struct):
    by: str
    comment: str | None


class AckedAlert(msgspec.Struct):
    """An acknowledged alert the engine no longer holds (resolved since)."""

    id: str
    status: str
    acknowledged: AckGiven


class Acknowledged(msgspec.Struct):
    """An acknowledgment as the engine announces it to its subscribers, with its ``seq`` in the history."""

    seq: int
    transition: str
    id: str
    acknowledged: AckGiven
