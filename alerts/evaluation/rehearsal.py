"""Rehearsals: a stored night replayed into a campaign of its own, and the table of what the rules made of it.

``warroom rehearse`` replays last year's night (or any stored one) so a team can tune its rules before the real
night. Through the server, the night's events are posted again under the rehearsal's campaign with watermarks,
and the live engine judges it on event time (``app/campaigns/clock.py``). With ``--rules DIR`` it is replayed
here instead, as fast as possible, through the same pure code the server runs: the metrics ``Engine`` fed the
events and a watermark every ``EVALUATE_STEP_S`` of the night, then judged on the campaign's clock
(``alerts/evaluation/judgement.py``, as live). Either way the result is one ``NightAlert`` per alert that fired,
printed by ``table`` in the night's own time.

Pure: the wall time is passed in; the caller reads the events and prints.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from alerts.evaluation.evaluate import Evaluator
from alerts.evaluation.judgement import judge
from alerts.evaluation.lifecycle import Lifecycle, Transition
from alerts.evaluation.rules import AnyRule
from alerts.evaluation.severity import Severity, most_severe
from alerts.evaluation.views import REHEARSAL_MARKS
from app.campaigns.model import Campaign
from app.metrics.engine import Engine
from app.metrics.measures import Event

EVALUATE_STEP_S = 15.0
"""An in-process rehearsal evaluates the rules every this many seconds of the night (the server evaluates after
each update, at most five times a real second: at 60x, every 12 s of the night or so)."""
WATERMARK = "watermark"
HIDDEN_LABELS = frozenset({"campaign", *REHEARSAL_MARKS})
"""Labels every alert of the rehearsal carries alike: the table leaves them out."""
TABLE_COLUMNS = ("RULE", "LABELS", "SEVERITY", "FIRED", "RESOLVED")
STILL_FIRING = "still firing"
NO_ALERT = "no rule fired during the night"


@dataclass(frozen=True)
class NightAlert:
    """One alert of a rehearsal: its rule and labels, the highest severity it reached, and when (epoch seconds of
    the night) it fired and resolved (None: still firing when the night ended)."""

    rule: str
    labels: dict[str, str]
    severity: Severity
    fired_at: float
    resolved_at: float | None

    @property
    def shown_labels(self) -> str:
        """``sku=SKU-1001 channel=tmall``: the labels that tell this alert apart from the rule's others."""
        return " ".join(f"{k}={v}" for k, v in sorted(self.labels.items()) if k not in HIDDEN_LABELS)


def night_alerts(transitions: Iterable[Transition]) -> list[NightAlert]:
    """The alerts that fired in ``transitions`` (in the order they happened), by when they fired."""
    found: dict[str, NightAlert] = {}
    for t in transitions:
        alert = t.alert
        known = found.get(alert.id)
        if known is None:
            if t.kind != "firing":
                continue
            known = NightAlert(alert.rule, dict(alert.labels), t.severity, t.at, None)
        severity = Severity(most_severe((known.severity, t.severity)))
        resolved_at = t.at if t.kind == "resolved" else known.resolved_at
        found[alert.id] = NightAlert(known.rule, known.labels, severity, known.fired_at, resolved_at)
    return ordered(found.values())


def ordered(alerts: Iterable[NightAlert]) -> list[NightAlert]:
    return sorted(alerts, key=lambda a: (a.fired_at, a.rule, a.shown_labels))


def _watermark(campaign: str, at: float, seq: int) -> Event:
    return Event._make((seq, WATERMARK, at, campaign, *[None] * (len(Event._fields) - 4)))


class Rehearsal:
    """One stored night replayed in-process as campaign ``night`` and judged with ``rules``.

    Feed it the baseline's stored events (``remember``, in ``seq`` order: what the night is compared with, as on
    the server), then the night's own events in time order, in chunks (``play``; their campaign id is replaced),
    then ``finish``. The night is applied a step at a time, each step closed by a watermark at its end and the
    rules evaluated there on the campaign's clock; the last step ends at the last event. ``wall`` is the real
    time: a baseline without watermarks runs on it, as a stored night does on the server.
    """

    def __init__(
        self,
        night: Campaign,
        rules: Sequence[AnyRule],
        wall: float,
        baseline: Campaign | None = None,
        step_s: float = EVALUATE_STEP_S,
    ) -> None:
        self.night = night
        self.wall = wall
        self.step_s = step_s
        self.engine = Engine([night, *([baseline] if baseline is not None else [])])
        self.evaluator = Evaluator(list(rules))
        self.lifecycle = Lifecycle()
        self.through: float | None = None
        """The night time the last step ended at."""
        self.played = 0
        """The night's events applied so far."""
        self._seq = itertools.count(1)
        self._pending: list[Event] = []
        self._step_end: float | None = None
        self._last: float | None = None
        self._transitions: list[Transition] = []

    def remember(self, history: Iterable[Event]) -> None:
        """Apply stored events of the baseline campaign (in ``seq`` order)."""
        self.engine.apply(event._replace(seq=next(self._seq)) for event in history)

    def play(self, events: Iterable[Event]) -> None:
        """Apply the night's next events (in time order; stored watermarks are skipped: the steps make their own)."""
        for event in events:
            if event.type == WATERMARK:
                continue
            at = event.occurred_at
            if self._step_end is None:
                self._step_end = at + self.step_s
            while at > self._step_end:
                self._step(self._step_end)
                self._step_end += self.step_s
            self._pending.append(event._replace(seq=next(self._seq), campaign=self.night.id))
            self._last = at

    def finish(self) -> list[NightAlert]:
        """Close the last step at the night's last event; the alerts that fired."""
        if self._last is not None:
            self._step(self._last)
        return night_alerts(self._transitions)

    def _step(self, through: float) -> None:
        self.engine.apply([*self._pending, _watermark(self.night.id, through, next(self._seq))])
        self.played += len(self._pending)
        self._pending.clear()
        self._transitions += judge(self.engine, self.night.id, self.wall, self.evaluator, self.lifecycle)[1]
        self.through = through


def night_time(epoch: float, timezone: str) -> str:
    """``2025-11-11 00:28:05 +08``: a moment of the night in the campaign's time zone (minutes of the offset only
    when it has some)."""
    moment = datetime.fromtimestamp(epoch, ZoneInfo(timezone))
    offset = moment.strftime("%z")
    zone = offset[:3] if offset.endswith("00") else f"{offset[:3]}:{offset[3:]}"
    return f"{moment:%Y-%m-%d %H:%M:%S} {zone}"


def table(alerts: Sequence[NightAlert], timezone: str) -> list[str]:
    """Aligned text lines, a header first: each alert's rule, labels, highest severity, and when it fired and
    resolved in the night's time (``still firing`` when the night ended first)."""
    if not alerts:
        return [NO_ALERT]
    rows = [TABLE_COLUMNS] + [
        (
            a.rule,
            a.shown_labels or "-",
            a.severity.value,
            night_time(a.fired_at, timezone),
            night_time(a.resolved_at, timezone) if a.resolved_at is not None else STILL_FIRING,
        )
        for a in alerts
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
