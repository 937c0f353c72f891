"""Deciding which message goes to which contact point, and when: grouping, repeats, escalation, resolution.

Pure logic with an injected clock, as Alertmanager's dispatcher and
notification log: alerts are grouped per route by ``group_by`` labels; a new
group is sent after ``group_wait``; then the group is looked at every
``group_interval`` and sent when it gained alerts, when alerts the receiver
was told about resolved, or when ``repeat_interval`` passed while an alert is
still unacknowledged. Escalation steps are extra lanes of the route that an
alert enters once it has been firing unacknowledged for the step's ``after``.

What each receiver was last told about each group is the ``LogEntry``; the
caller persists it together with the outgoing messages, so after a restart
nothing is sent twice and nothing is forgotten.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from alerts.evaluation.severity import Severity, most_severe, rank
from alerts.notify.routing import ResolvedRoute, Routing

FlushKind = Literal["firing", "resolved", "repeat", "escalation"]


@dataclass(frozen=True)
class Notice:
    """An alert as the dispatcher sees it; ``labels`` include ``rule`` and ``severity``."""

    id: str
    labels: dict[str, str]
    firing: bool
    fired_at: float
    """On the wall clock (a rehearsal's alert: when delivery first saw it firing, not the night's time)."""
    acknowledged: bool = False
    muted: bool = False
    """Silenced or inhibited: recorded and shown, but not sent."""


@dataclass(frozen=True)
class LogEntry:
    """What a receiver was last sent about a group: for each firing alert it was told about, when it was
    first told and at which severity (a rise is news again)."""

    told: Mapping[str, tuple[float, str]]
    sent_at: float
    flushes: int

    @property
    def firing(self) -> frozenset[str]:
        return frozenset(self.told)


GroupId = tuple[str, str, str]
"""(lane, receiver, group key); a lane is a route key, or ``<route key>/escalate<n>`` for escalation step n."""


@dataclass(frozen=True)
class Flush:
    """A decision to tell ``receiver`` about a group now (``send`` false: only the log changes)."""

    group: GroupId
    kind: FlushKind
    firing: tuple[Notice, ...]
    resolved: tuple[Notice, ...]
    new: frozenset[str]
    entry: LogEntry
    previous: LogEntry | None
    send: bool = True

    @property
    def receiver(self) -> str:
        return self.group[1]

    @property
    def severity(self) -> Severity:
        """The most severe firing alert's severity (of the resolved ones when none fires)."""
        notices = self.firing or self.resolved
        if not notices:
            return Severity.REMINDER
        return Severity(most_severe(n.labels.get("severity", Severity.REMINDER) for n in notices))


@dataclass(frozen=True)
class _Lane:
    name: str
    route: ResolvedRoute
    receiver: str
    escalate_after: float | None
    group_wait: float


@dataclass
class _Group:
    lane: _Lane
    key: str
    firing: list[Notice]
    resolved: list[Notice]


class Dispatcher:
    """Turns the current alerts and the notification log into the messages due now."""

    def __init__(self, routing: Routing) -> None:
        self.routing = routing
        self._lanes: dict[str, _Lane] = {}
        for route in routing.routes:
            if route.receiver is not None:
                self._lanes[route.key] = _Lane(route.key, route, route.receiver, None, route.group_wait)
            for step, (after, receiver) in enumerate(route.escalate, start=1):
                name = f"{route.key}/escalate{step}"
                self._lanes[name] = _Lane(name, route, receiver, after, 0.0)
        self._due: dict[GroupId, float] = {}

    def plan(
        self, notices: list[Notice], log: Mapping[GroupId, LogEntry], now: float
    ) -> tuple[list[Flush], float | None]:
        """The flushes due at ``now`` and when to look again (None: only when alerts change)."""
        groups = self._groups(notices, log, now)
        flushes: list[Flush] = []
        for gid, group in groups.items():
            due = self._due.setdefault(gid, now + group.lane.group_wait)
            if now < due:
                continue
            self._due[gid] = now + group.lane.route.group_interval
            flush = self._decide(gid, group, log.get(gid), now)
            if flush is not None:
                flushes.append(flush)
        for gid in set(self._due) - set(groups):
            del self._due[gid]
        wake = [*self._due.values(), *self._escalations_ahead(notices, log, now)]
        return flushes, min(wake) if wake else None

    def _groups(self, notices: list[Notice], log: Mapping[GroupId, LogEntry], now: float) -> dict[GroupId, _Group]:
        """Each lane's groups: firing alerts routed there (muted ones only if already told, so their
        resolution is still announced), and told alerts that have resolved since."""
        groups: dict[GroupId, _Group] = {}
        by_id = {n.id: n for n in notices}
        for notice in notices:
            if not notice.firing:
                continue
            for route in self.routing.match(notice.labels):
                key = route.group_key(notice.labels)
                for lane in self._lanes_of(route):
                    gid = (lane.name, lane.receiver, key)
                    told = gid in log and notice.id in log[gid].told
                    if notice.muted and not told:
                        continue
                    if lane.escalate_after is not None and not told:
                        started = self._escalation_start(route, key, notice, log)
                        if notice.acknowledged or started is None or now - started < lane.escalate_after:
                            continue
                    groups.setdefault(gid, _Group(lane, key, [], [])).firing.append(notice)
        for gid, entry in log.items():
            told_lane = self._lanes.get(gid[0])
            if told_lane is None or told_lane.receiver != gid[1]:
                continue
            resolved = [by_id[i] for i in sorted(entry.told) if i in by_id and not by_id[i].firing]
            if resolved:
                groups.setdefault(gid, _Group(told_lane, gid[2], [], [])).resolved.extend(resolved)
        return groups

    def _lanes_of(self, route: ResolvedRoute) -> list[_Lane]:
        names = [route.key, *(f"{route.key}/escalate{step}" for step in range(1, len(route.escalate) + 1))]
        return [self._lanes[name] for name in names if name in self._lanes]

    @staticmethod
    def _escalation_start(
        route: ResolvedRoute, key: str, notice: Notice, log: Mapping[GroupId, LogEntry]
    ) -> float | None:
        """Escalation counts from when the route's own receiver was told (None: not yet), or from the
        alert's firing when the route escalates without a receiver of its own."""
        if route.receiver is None:
            return notice.fired_at
        entry = log.get((route.key, route.receiver, key))
        told = entry.told.get(notice.id) if entry else None
        return told[0] if told else None

    def _decide(self, gid: GroupId, group: _Group, entry: LogEntry | None, now: float) -> Flush | None:
        told = entry.told if entry else {}

        def news(notice: Notice) -> bool:
            before = told.get(notice.id)
            severity = notice.labels.get("severity", Severity.REMINDER)
            return before is None or rank(severity) > rank(before[1])

        new = frozenset(n.id for n in group.firing if news(n) and not n.muted)
        send_resolved = self.routing.contact_points[group.lane.receiver].send_resolved
        repeat_due = (
            entry is not None
            and now - entry.sent_at >= group.lane.route.repeat_interval
            and any(not n.acknowledged and not n.muted for n in group.firing)
        )
        escalation = group.lane.escalate_after is not None
        if new:
            kind: FlushKind = "escalation" if escalation else "firing"
        elif group.resolved:
            kind = "resolved"
        elif repeat_due:
            kind = "repeat"
        else:
            return None
        send = kind != "resolved" or send_resolved
        updated = {
            n.id: (told[n.id][0] if n.id in told else now, n.labels.get("severity", Severity.REMINDER))
            for n in group.firing
        }
        flushes = entry.flushes if entry else 0
        return Flush(
            group=gid,
            kind=kind,
            firing=tuple(sorted((n for n in group.firing if not n.muted), key=lambda n: n.fired_at)),
            resolved=tuple(group.resolved) if send_resolved else (),
            new=new,
            entry=LogEntry(updated, now if send else (entry.sent_at if entry else now), flushes + 1),
            previous=entry,
            send=send,
        )

    def _escalations_ahead(self, notices: list[Notice], log: Mapping[GroupId, LogEntry], now: float) -> list[float]:
        """When unacknowledged alerts will reach their next escalation step."""
        times: list[float] = []
        for notice in notices:
            if not notice.firing or notice.muted or notice.acknowledged:
                continue
            for route in self.routing.match(notice.labels):
                started = self._escalation_start(route, route.group_key(notice.labels), notice, log)
                if started is None:
                    continue
                for after, _ in route.escalate:
                    if started + after > now:
                        times.append(started + after)
                        break
        return times

    def forget(self, gid: GroupId) -> None:
        """Look at a group again at once (its flush could not be stored and must be redone)."""
        self._due.pop(gid, None)
