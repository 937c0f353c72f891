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

from dataclasses import dataclass
from typing import Literal, Mapping

from alerts.routing import ResolvedRoute, Routing

FlushKind = Literal["firing", "resolved", "repeat", "escalation"]


@dataclass(frozen=True)
class Notice:
    """An alert as the dispatcher sees it; ``labels`` include ``rule`` and ``severity``."""

    id: str
    labels: dict[str, str]
    firing: bool
    fired_at: float
    acknowledged: bool = False
    muted: bool = False
    """Silenced or inhibited: recorded and shown, but not sent."""


@dataclass(frozen=True)
class LogEntry:
    """What a receiver was last sent about a group."""

    firing: frozenset[str]
    sent_at: float
    flushes: int


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
    def severity(self) -> str:
        """The most severe firing alert's severity (of the resolved ones when none fires)."""
        notices = self.firing or self.resolved
        order = {"emergency": 0, "warning": 1, "reminder": 2}
        return min((n.labels.get("severity", "reminder") for n in notices), key=lambda s: order.get(s, 3))


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
        wake = [*self._due.values(), *self._escalations_ahead(notices, now)]
        return flushes, min(wake) if wake else None

    def _groups(self, notices: list[Notice], log: Mapping[GroupId, LogEntry], now: float) -> dict[GroupId, _Group]:
        groups: dict[GroupId, _Group] = {}
        by_id = {n.id: n for n in notices}
        for notice in notices:
            if not notice.firing or notice.muted:
                continue
            for route in self.routing.match(notice.labels):
                key = route.group_key(notice.labels)
                lanes = [self._lanes.get(route.key)] + [
                    self._lanes.get(f"{route.key}/escalate{step}") for step in range(1, len(route.escalate) + 1)
                ]
                for lane in lanes:
                    if lane is None:
                        continue
                    gid = (lane.name, lane.receiver, key)
                    if lane.escalate_after is not None:
                        told = gid in log and notice.id in log[gid].firing
                        qualifies = not notice.acknowledged and now - notice.fired_at >= lane.escalate_after
                        if not (told or qualifies):
                            continue
                    groups.setdefault(gid, _Group(lane, key, [], [])).firing.append(notice)
        for gid, entry in log.items():
            lane = self._lanes.get(gid[0])
            if lane is None or lane.receiver != gid[1]:
                continue
            resolved = [by_id[i] for i in sorted(entry.firing) if i in by_id and not by_id[i].firing]
            if resolved:
                groups.setdefault(gid, _Group(lane, gid[2], [], [])).resolved.extend(resolved)
        return groups

    def _decide(self, gid: GroupId, group: _Group, entry: LogEntry | None, now: float) -> Flush | None:
        firing_ids = frozenset(n.id for n in group.firing)
        told = entry.firing if entry else frozenset()
        new = firing_ids - told
        send_resolved = self.routing.contact_points[group.lane.receiver].send_resolved
        repeat_due = (
            entry is not None
            and now - entry.sent_at >= group.lane.route.repeat_interval
            and any(not n.acknowledged for n in group.firing)
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
        flushes = entry.flushes if entry else 0
        return Flush(
            group=gid,
            kind=kind,
            firing=tuple(sorted(group.firing, key=lambda n: n.fired_at)),
            resolved=tuple(group.resolved),
            new=new,
            entry=LogEntry(firing_ids, now if send else (entry.sent_at if entry else now), flushes + 1),
            previous=entry,
            send=send,
        )

    def _escalations_ahead(self, notices: list[Notice], now: float) -> list[float]:
        """When unacknowledged alerts will reach their next escalation step."""
        times: list[float] = []
        for notice in notices:
            if not notice.firing or notice.muted or notice.acknowledged:
                continue
            for route in self.routing.match(notice.labels):
                for after, _ in route.escalate:
                    if notice.fired_at + after > now:
                        times.append(notice.fired_at + after)
                        break
        return times

    def forget(self, gid: GroupId) -> None:
        """Look at a group again at once (its flush could not be stored and must be redone)."""
        self._due.pop(gid, None)
