"""Alert endpoints: active alerts and history, acknowledge, silences, rules and their reload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from alerts.evaluation import store
from alerts.evaluation.inhibit import InhibitRule
from alerts.evaluation.rules import CorrelationRule, DynamicRule, StaticRule
from alerts.evaluation.severity import Severity, rank
from alerts.evaluation.silences import MAX_VALUE_LENGTH, NAME_PATTERN, Matcher, MatchOp, Silence
from alerts.evaluation.views import AckedAlert, AlertTransition, LiveAlert, StoredAlert
from app.api import schemas
from app.api.payloads import read_struct
from app.api.responses import json_response
from app.api.services import Alerts, Operator, Pool, Reader
from app.core.configfile import ConfigError
from app.core.errors import ApiError

MAX_LIST = 1000
MAX_SILENCE = timedelta(days=30)
MAX_NAME_LENGTH = 128
MAX_COMMENT_LENGTH = 2000
MAX_REASON_LENGTH = 500
MAX_MATCHERS = 20
MOMENT = msgspec.Meta(extra_json_schema={"format": "date-time"})
"""RFC 3339; one without a UTC offset is decoded, then refused by name (``needs a UTC offset``)."""

router = APIRouter(tags=["alerts"])


class ActiveSilence(msgspec.Struct):
    id: str
    matchers: list[Matcher]
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str


class RuleState(msgspec.Struct):
    """A loaded rule (``definition`` as written, of its ``kind``) and what its last evaluation found."""

    name: str
    kind: str
    campaign: str | None
    by: str | None
    definition: dict[str, Any]
    series_evaluated: int
    series_triggered: int
    firing: int
    last_evaluated_at: float | None


class RuleList(msgspec.Struct):
    rules: list[RuleState]
    eval_ms: float
    inhibit: list[InhibitRule]


class Reloaded(msgspec.Struct):
    rules: int
    """How many rules are loaded now."""


@router.get(
    "/v1/alerts",
    summary="Alerts, most severe first (default: firing), with who silences or inhibits them",
    responses=schemas.responses(
        list[LiveAlert], list[StoredAlert], description="Firing alerts as the engine holds them; others as stored"
    ),
)
async def list_alerts(
    service: Alerts,
    pool: Pool,
    key: Reader,
    status: Literal["firing", "resolved", "all"] = "firing",
    severity: Severity | None = None,
    campaign: str | None = None,
    rule: str | None = None,
    limit: int = Query(200, ge=1, le=MAX_LIST),
) -> Response:
    if status == "firing":
        alerts = [
            service.render(a)
            for a in service.lifecycle.alerts.values()
            if a.status == "firing"
            and (severity is None or a.severity == severity)
            and (campaign is None or a.labels.get("campaign") == campaign)
            and (rule is None or a.rule == rule)
        ]
        alerts.sort(key=lambda a: (-rank(a.severity), -(a.fired_at or 0)))
        return json_response(alerts[:limit])
    async with pool.acquire() as conn:
        rows = await store.alerts(
            conn,
            status=None if status == "all" else status,
            severity=severity,
            campaign=campaign,
            rule=rule,
            limit=limit,
        )
    return json_response(rows)


@router.get(
    "/v1/alerts/history",
    summary="Every transition (fired, escalated, de-escalated, resolved) with its values and the summary of its moment",
    responses=schemas.responses(list[AlertTransition]),
)
async def history(
    service: Alerts,
    pool: Pool,
    key: Reader,
    since: datetime | None = Query(None, description="RFC 3339"),
    until: datetime | None = Query(None, description="RFC 3339"),
    after: int = Query(0, ge=0, description="only transitions with seq > after (resume a stream)"),
    limit: int = Query(500, ge=1, le=MAX_LIST),
) -> Response:
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise ApiError(422, f"{name} needs a UTC offset", field=name)
    async with pool.acquire() as conn:
        rows = await store.history(conn, since=since, until=until, after_seq=after, limit=limit)
    return json_response([service.retell(row) for row in rows])


Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)]


class Acknowledgment(msgspec.Struct):
    by: Annotated[Name | None, msgspec.Meta(description="who acknowledges; default the key's name")] = None
    comment: Annotated[str, msgspec.Meta(max_length=MAX_COMMENT_LENGTH)] | None = None


@router.post(
    "/v1/alerts/{alert_id}/ack",
    summary="Acknowledge an alert (stops repeats and escalation)",
    responses=schemas.responses(LiveAlert, AckedAlert, description="The alert, acknowledged"),
    openapi_extra=schemas.request_body(Acknowledgment, "Who acknowledges and why (both optional)"),
)
async def acknowledge(alert_id: str, request: Request, service: Alerts, key: Operator) -> Response:
    body = await read_struct(request, Acknowledgment)
    result = await service.acknowledge(alert_id, body.by or key.name, body.comment)
    if result is None:
        raise ApiError(404, f"no alert {alert_id!r}", field="alert_id")
    return json_response(result)


class MatcherIn(msgspec.Struct):
    """A structured matcher: the value is taken as it is (a regex only with ``=~`` or ``!~``)."""

    name: Annotated[str, msgspec.Meta(pattern=NAME_PATTERN, max_length=MAX_NAME_LENGTH, examples=["sku"])]
    op: Annotated[MatchOp, msgspec.Meta(examples=["="])]
    value: Annotated[str, msgspec.Meta(max_length=MAX_VALUE_LENGTH, examples=["SKU-1001"])]


class SilenceIn(msgspec.Struct):
    matchers: Annotated[
        list[MatcherIn | str],
        msgspec.Meta(
            min_length=1,
            max_length=MAX_MATCHERS,
            description='structured, e.g. [{"name": "sku", "op": "=", "value": "SKU-1001"}],'
            " or the operator-typed text form"
            ' ["sku=SKU-1001", "rule=~stock_.*"] (quote a value to take it literally: sku="~x")',
        ),
    ]
    ends_at: Annotated[datetime, MOMENT]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REASON_LENGTH)]
    starts_at: Annotated[Annotated[datetime, MOMENT] | None, msgspec.Meta(description="default now")] = None
    created_by: Name | None = None


def _silence(silence: Silence) -> ActiveSilence:
    return ActiveSilence(
        id=silence.id,
        matchers=list(silence.matchers),
        starts_at=datetime.fromtimestamp(silence.starts_at, UTC),
        ends_at=datetime.fromtimestamp(silence.ends_at, UTC),
        reason=silence.reason,
        created_by=silence.created_by,
    )


def _matchers(given: list[MatcherIn | str]) -> tuple[Matcher, ...]:
    """Structured matchers as given; text ones parsed once, here at the edge."""
    out = []
    for index, matcher in enumerate(given):
        try:
            out.append(
                Matcher.parse(matcher)
                if isinstance(matcher, str)
                else Matcher.checked(matcher.name, matcher.op, matcher.value)
            )
        except ValueError as exc:
            raise ApiError(422, f"matchers[{index}]: {exc}", field="matchers") from None
    return tuple(out)


@router.get("/v1/silences", summary="Active and upcoming silences", responses=schemas.responses(list[ActiveSilence]))
async def list_silences(service: Alerts, key: Reader) -> Response:
    return json_response([_silence(s) for s in service.silences])


@router.post(
    "/v1/silences",
    status_code=201,
    summary="Silence matching alerts for a planned event",
    responses=schemas.responses(ActiveSilence, status=201, description="Created"),
    openapi_extra=schemas.request_body(SilenceIn, "What to silence, until when, and why"),
)
async def add_silence(request: Request, service: Alerts, key: Operator) -> Response:
    body = await read_struct(request, SilenceIn)
    now = datetime.now(UTC)
    starts = body.starts_at or now
    for name, moment in (("starts_at", starts), ("ends_at", body.ends_at)):
        if moment.tzinfo is None:
            raise ApiError(422, f"{name} needs a UTC offset", field=name)
    if body.ends_at <= starts:
        raise ApiError(422, "ends_at must be after starts_at", field="ends_at")
    if body.ends_at - starts > MAX_SILENCE:
        raise ApiError(422, "a silence may last at most 30 days", field="ends_at")
    if body.ends_at <= now:
        raise ApiError(422, "ends_at is in the past", field="ends_at")
    matchers = _matchers(body.matchers)
    silence = await service.add_silence(
        matchers, starts.timestamp(), body.ends_at.timestamp(), body.reason, body.created_by or key.name
    )
    return json_response(_silence(silence), 201)


@router.delete(
    "/v1/silences/{silence_id}",
    status_code=204,
    summary="Expire a silence now",
    responses=schemas.responses(status=204, description="Expired"),
)
async def expire_silence(silence_id: str, service: Alerts, key: Operator) -> Response:
    if not await service.expire_silence(silence_id):
        raise ApiError(404, f"no active silence {silence_id!r}", field="silence_id")
    return Response(status_code=204)


@router.get("/v1/rules", summary="Loaded rules and their last evaluation", responses=schemas.responses(RuleList))
async def rules(service: Alerts, key: Reader) -> Response:
    firing: dict[str, int] = {}
    for alert in service.lifecycle.alerts.values():
        if alert.status == "firing":
            firing[alert.rule] = firing.get(alert.rule, 0) + 1
    out = []
    for rule in service.rules.rules:
        status = service.status.get(rule.name)
        kind = (
            "static" if isinstance(rule, StaticRule) else "dynamic" if isinstance(rule, DynamicRule) else "correlation"
        )
        assert isinstance(rule, (StaticRule, DynamicRule, CorrelationRule))
        out.append(
            RuleState(
                name=rule.name,
                kind=kind,
                campaign=rule.campaign,
                by=rule.by,
                definition=msgspec.to_builtins(rule),
                series_evaluated=status.series if status else 0,
                series_triggered=status.triggered if status else 0,
                firing=firing.get(rule.name, 0),
                last_evaluated_at=status.last_evaluated_at if status else None,
            )
        )
    return json_response(RuleList(rules=out, eval_ms=service.eval_ms, inhibit=list(service.rules.inhibit)))


@router.post(
    "/v1/rules/reload",
    summary="Reload rule files; alert state is kept; an invalid file changes nothing",
    responses=schemas.responses(Reloaded),
)
async def reload_rules(service: Alerts, key: Operator) -> Response:
    try:
        count = service.reload()
    except ConfigError as exc:
        raise ApiError(422, str(exc), field=exc.field) from None
    return json_response(Reloaded(rules=count))
