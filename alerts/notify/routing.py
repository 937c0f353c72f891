"""Who hears about which alert: contact points (Apprise URLs) and a routing tree, read from YAML.

Modelled on Alertmanager's route tree, tuned for a burst: group waits in
seconds, and an escalation chain (PagerDuty-style) for alerts nobody
acknowledges. Every alert reaches the websocket stream, the on-call page
and the wall regardless of routes; routes decide the chat and paging
channels. The matching logic is pure: labels in, routes out.

Contact point URLs may name environment variables as ``${NAME}`` so the
file can be committed without secrets; the URLs themselves are never
logged or returned by the API. They are expanded once, when the file is
parsed, from the environment the caller passes in (``alerts.notify.notifyfile``
reads the process's environment and asks Apprise whether it understands each URL).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

import msgspec

from alerts.evaluation.rules import Duration, seconds
from alerts.evaluation.silences import Matcher, matches_all
from app.core import configfile

DEFAULT_GROUP_BY = ("campaign", "rule")
DEFAULT_GROUP_WAIT = "500ms"
"""Wait this long after a group's first alert, so alerts of one cause arrive as one message."""
DEFAULT_GROUP_INTERVAL = "30s"
"""Then send changes to the group (alerts added or resolved) at most this often."""
DEFAULT_REPEAT_INTERVAL = "30m"
"""Repeat an unchanged, unacknowledged group this often."""
REHEARSAL_LABEL = "rehearsal"
"""Alerts of a replayed night carry ``rehearsal="true"``; they reach a contact point only through a route whose
matchers (its own or a parent's) name this label, so a rehearsal never pages anyone who did not ask for it."""
ALL_LABELS = "..."
"""``group_by: [...]`` groups by every label, so each alert is its own group (as in Alertmanager)."""

ContactName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ContactPoint(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One or more Apprise URLs that receive the same messages (``dingtalk://…``, ``wecombot://…``, ``json://…``)."""

    urls: list[str]
    send_resolved: bool = True
    language: str = "both"
    """``zh``, ``en`` or ``both`` (bilingual message)."""

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("a contact point needs at least one Apprise URL")
        if self.language not in ("zh", "en", "both"):
            raise ValueError("language must be zh, en or both")


class Escalation(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """After ``after`` without acknowledgment, an alert also goes to ``receiver``."""

    after: Duration
    receiver: ContactName


class Route(msgspec.Struct, forbid_unknown_fields=True, frozen=True, rename={"continue_": "continue"}):
    """A node of the routing tree; unset timing and grouping fields are inherited from the parent."""

    match: list[str] = []
    """Alertmanager matchers on the alert's labels plus ``rule`` and ``severity``; all must hold."""
    receiver: ContactName | None = None
    """Contact point for alerts that stop here; none means wall, stream and on-call page only."""
    continue_: bool = False
    """Keep looking at later sibling routes after this one matched."""
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    escalate: list[Escalation] = []
    routes: list[Route] = []

    def __post_init__(self) -> None:
        for text in self.match:
            Matcher.parse(text)
        afters = [seconds(step.after) for step in self.escalate]
        if afters != sorted(afters):
            raise ValueError("escalation steps must be in order of their 'after'")


class NotifyFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    contact_points: dict[ContactName, ContactPoint] = {}
    route: Route = Route()


@dataclass(frozen=True)
class ResolvedRoute:
    """A route with everything inherited filled in. ``path`` is its place in the tree (``0.2.1``);
    ``key`` is derived from what it matches and where it sends, so the notification log stays attached
    to the route when other routes are added or reordered around it."""

    key: str
    path: str
    receiver: str | None
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    escalate: tuple[tuple[float, str], ...]
    rehearsals: bool = False
    """Whether this route or a parent matches on the ``rehearsal`` label (and so takes rehearsal alerts)."""

    def group_key(self, labels: dict[str, str]) -> str:
        """Which group of this route an alert with ``labels`` belongs to."""
        if self.group_by == (ALL_LABELS,):
            return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        return ",".join(f"{name}={labels.get(name, '')}" for name in self.group_by)


@dataclass(frozen=True)
class _Node:
    matchers: tuple[Matcher, ...]
    resolved: ResolvedRoute
    proceed: bool
    children: tuple[_Node, ...]


class Routing:
    """The parsed routing tree and contact points (their URLs expanded)."""

    def __init__(self, config: NotifyFile) -> None:
        self.contact_points = config.contact_points
        self.routes: list[ResolvedRoute] = []
        self._root = self._build(config.route, None, "0", (), False)

    def _build(
        self, route: Route, parent: ResolvedRoute | None, path: str, lineage: tuple[str, ...], rehearsals: bool
    ) -> _Node:
        def pick(value: str | None, inherited: float | None, default: str) -> float:
            return seconds(value) if value is not None else inherited if inherited is not None else seconds(default)

        lineage = (*lineage, json.dumps([route.match, route.receiver, route.group_by], sort_keys=True))
        matchers = tuple(map(Matcher.parse, route.match))
        rehearsals = rehearsals or any(m.name == REHEARSAL_LABEL for m in matchers)
        resolved = ResolvedRoute(
            key=hashlib.sha256("\n".join(lineage).encode()).hexdigest()[:12],
            path=path,
            receiver=route.receiver if route.receiver is not None else (parent.receiver if parent else None),
            group_by=tuple(route.group_by)
            if route.group_by is not None
            else (parent.group_by if parent else DEFAULT_GROUP_BY),
            group_wait=pick(route.group_wait, parent.group_wait if parent else None, DEFAULT_GROUP_WAIT),
            group_interval=pick(
                route.group_interval, parent.group_interval if parent else None, DEFAULT_GROUP_INTERVAL
            ),
            repeat_interval=pick(
                route.repeat_interval, parent.repeat_interval if parent else None, DEFAULT_REPEAT_INTERVAL
            ),
            escalate=tuple((seconds(s.after), s.receiver) for s in route.escalate),
            rehearsals=rehearsals,
        )
        self.routes.append(resolved)
        children = tuple(
            self._build(child, resolved, f"{path}.{i}", lineage, rehearsals) for i, child in enumerate(route.routes)
        )
        return _Node(matchers, resolved, route.continue_, children)

    def match(self, labels: dict[str, str]) -> list[ResolvedRoute]:
        """The routes an alert stops at: the deepest matching ones, siblings tried in order until one
        matches without ``continue``; the root when no child matches. A rehearsal's alert stops only at routes
        that name rehearsals."""
        found = self._match(self._root, labels) or [self._root.resolved]
        if labels.get(REHEARSAL_LABEL) == "true":
            return [route for route in found if route.rehearsals]
        return found

    def _match(self, node: _Node, labels: dict[str, str]) -> list[ResolvedRoute]:
        if not matches_all(node.matchers, labels):
            return []
        found: list[ResolvedRoute] = []
        for child in node.children:
            matched = self._match(child, labels)
            found += matched
            if matched and not child.proceed:
                break
        return found or [node.resolved]


def expand_environment(url: str, environ: Mapping[str, str]) -> str:
    """Replace ``${NAME}`` with the variable's value in ``environ``; a missing variable is an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise ValueError(f"environment variable {name} is not set")
        return environ[name]

    return _ENV.sub(value, url)


def _checked(
    config: NotifyFile,
    marks: configfile.Marks,
    source: str,
    environ: Mapping[str, str],
    understood: Callable[[str], bool],
) -> NotifyFile:
    """``config`` with its URLs expanded. Receivers must name contact points; URLs must expand and be
    ``understood``. Errors name the line, never the secret."""

    def check_route(route: Route, path: tuple[str | int, ...]) -> None:
        if route.receiver is not None and route.receiver not in config.contact_points:
            raise configfile.error_at(source, marks, (*path, "receiver"), f"no contact point named {route.receiver!r}")
        for i, step in enumerate(route.escalate):
            if step.receiver not in config.contact_points:
                raise configfile.error_at(
                    source, marks, (*path, "escalate", i, "receiver"), f"no contact point named {step.receiver!r}"
                )
        for i, child in enumerate(route.routes):
            check_route(child, (*path, "routes", i))

    points: dict[str, ContactPoint] = {}
    for name, point in config.contact_points.items():
        urls: list[str] = []
        for index, url in enumerate(point.urls):
            path = ("contact_points", name, "urls", index)
            try:
                expanded = expand_environment(url, environ)
            except ValueError as exc:
                raise configfile.error_at(source, marks, path, str(exc)) from None
            if not understood(expanded):
                scheme = expanded.split("://", 1)[0] if "://" in expanded else "(none)"
                raise configfile.error_at(
                    source,
                    marks,
                    path,
                    f"Apprise does not understand this URL (scheme {scheme!r}); see the Apprise wiki",
                )
            urls.append(expanded)
        points[name] = msgspec.structs.replace(point, urls=urls)
    check_route(config.route, ("route",))
    return msgspec.structs.replace(config, contact_points=points)


def parse(text: str, source: str, *, environ: Mapping[str, str], understood: Callable[[str], bool]) -> Routing:
    """The routing in ``text``, its URLs expanded from ``environ`` and each checked with ``understood``."""
    config, marks = configfile.parse_located(text, NotifyFile, source)
    return Routing(_checked(config, marks, source, environ, understood))
