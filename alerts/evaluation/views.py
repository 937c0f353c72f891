"""What the alert engine shows of an alert: as it holds it (``LiveAlert``), as stored (``StoredAlert``), one of its
transitions (``AlertTransition``), an acknowledgment, and where a rehearsed night stands (``NightClock``). Pure data
(msgspec Structs): the API encodes them as they are, the wall and the websocket read their attributes.

Every alert says which clock its times are on (``clock``) and its campaign's time zone (``timezone``): an alert of
a replayed night (a rehearsal, the demo, a drill) fired at the night's own time, weeks ago on the wall clock, so
it reads as "fired 00:28:05" in the campaign's zone, never as an age against the wall clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import msgspec

from alerts.evaluation.severity import Severity
from app.campaigns.clock import ClockMode

REHEARSAL_MARKS: Mapping[str, str] = {"rehearsal": "true"}
"""Labels of every alert of a replayed night (a rehearsal, the demo, a drill): routes skip them unless they ask
(``alerts.notify.routing.REHEARSAL_LABEL``)."""
NO_CAMPAIGN_TIMEZONE = "UTC"
"""The zone of an alert about no campaign (or one no longer defined)."""
ACKNOWLEDGED_NEWS_S = 60.0
"""An acknowledged emergency stays on the wall's banner this long (wall clock), saying who acknowledged it and when,
then leaves it; an unacknowledged one stays, even once resolved."""

Clock = Annotated[
    ClockMode,
    msgspec.Meta(
        description="the clock the alert's fired_at, resolved_at and transition times are on: `live` (the wall"
        " clock) or `replay` (a rehearsed night's own time; the alert is a rehearsal and carries the label"
        " rehearsal=true). Acknowledgments are always on the wall clock"
    ),
]
Zone = Annotated[
    str, msgspec.Meta(description="the campaign's IANA time zone, in which its times read as the night's clock")
]


def clock_of(labels: Mapping[str, str]) -> ClockMode:
    """The clock an alert's times are on, from its labels: an alert of a replayed night carries ``REHEARSAL_MARKS``."""
    return "replay" if all(labels.get(k) == v for k, v in REHEARSAL_MARKS.items()) else "live"


class Reading(msgspec.Struct, frozen=True):
    """An alert's headline value as a person reads it, in its unit and each language: "93.8%", "¥17.75万" /
    "¥177.5K"."""

    en: str
    zh: str


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
    clock: Clock = "live"
    timezone: Zone = NO_CAMPAIGN_TIMEZONE
    fired_values: dict[str, Any] = {}
    """The values when it fired; ``values`` are the latest evaluation's (as of the transition, for a transition)."""
    reading: Reading | None = None
    """The headline value of ``values``, formatted."""
    fired_reading: Reading | None = None
    """The headline value when it fired, formatted."""


def is_news(alert: LiveAlert, wall: float) -> bool:
    """Whether an emergency belongs on the room's banner at wall time ``wall``: until it is acknowledged, firing or
    resolved (a resolved-but-unacknowledged emergency is still news), then for ``ACKNOWLEDGED_NEWS_S``."""
    if alert.severity != Severity.EMERGENCY:
        return False
    if alert.acknowledged is None:
        return True
    return alert.acknowledged.at is not None and wall - alert.acknowledged.at < ACKNOWLEDGED_NEWS_S


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
    clock: Clock = "live"
    timezone: Zone = NO_CAMPAIGN_TIMEZONE


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
    clock: Clock = "live"
    timezone: Zone = NO_CAMPAIGN_TIMEZONE
    reading: Reading | None = None
    """The headline value at this transition, formatted (the summary is of this moment too)."""
    fired_values: dict[str, Any] = {}
    """Its alert's values when it fired: a resolution's summary names the threshold it fired at."""


class AlertNow(msgspec.Struct):
    """A firing alert's latest values and the summary they make, as the wall shows it at the same moment."""

    id: str
    values: dict[str, Any]
    reading: Reading | None
    summary_en: str
    summary_zh: str


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


class NightClock(msgspec.Struct):
    """Where a night being rehearsed stands on its own clock (times in epoch seconds on that clock): the on-call
    page's header shows it as "演练 · 00:03:12 · 爆发期"."""

    campaign: str
    name: str
    name_zh: str | None
    clock: ClockMode
    timezone: Zone
    now: float
    phase: str | None
    next_phase: str | None
    next_phase_at: float | None
