"""Alert endpoints: active alerts and history, acknowledge, silences, rules and their reload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from alerts.evaluation import store
from alerts.evaluation.live import AlertService
from alerts.evaluation.rules import CorrelationRule, DynamicRule, StaticRule
from alerts.evaluation.silences import MAX_VALUE_LENGTH, NAME_PATTERN, Matcher, MatchOp
from app.access.auth import operator, reader
from app.access.keys import ApiKey
from app.api.responses import json_response
from app.core.configfile import ConfigError
from app.core.errors import ApiError

MAX_LIST = 1000
MAX_SILENCE = timedelta(days=30)

router = APIRouter(tags=["alerts"])


def _service(request: Request) -> AlertService:
    return request.app.state.services.alerts


def _row(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key in ("labels", "values"):
        if isinstance(out.get(key), str):
            out[key] = msgspec.json.decode(out[key])
    return out


@router.get("/v1/alerts", summary="Alerts, most severe first (default: firing), with who silences or inhibits them")
async def list_alerts(
    request: Request,
    status: Literal["firing", "resolved", "all"] = "firing",
    severity: Literal["reminder", "warning", "emergency"] | None = None,
    campaign: str | None = None,
    rule: str | None = None,
    limit: int = Query(200, ge=1, le=MAX_LIST),
    key: ApiKey = Depends(reader),
) -> Response:
    service = _service(request)
    if status == "firing":
        alerts = [
            service.render(a)
            for a in service.lifecycle.alerts.values()
            if a.status == "firing"
            and (severity is None or a.severity == severity)
            and (campaign is None or a.labels.get("campaign") == campaign)
            and (rule is None or a.rule == rule)
        ]
        order = {"emergency": 0, "warning": 1, "reminder": 2}
        alerts.sort(key=lambda a: (order[a["severity"]], -(a["fired_at"] or 0)))
        return json_response(alerts[:limit])
    async with request.app.state.services.pool.acquire() as conn:
        rows = await store.alerts(
            conn,
            status=None if status == "all" else status,
            severity=severity,
            campaign=campaign,
            rule=rule,
            limit=limit,
        )
    return json_response([_row(r) for r in rows])


@router.get("/v1/alerts/history", summary="Every transition (fired, escalated, de-escalated, resolved) with its values")
async def history(
    request: Request,
    since: datetime | None = Query(None, description="RFC 3339"),
    until: datetime | None = Query(None, description="RFC 3339"),
    after: int = Query(0, ge=0, description="only transitions with seq > after (resume a stream)"),
    limit: int = Query(500, ge=1, le=MAX_LIST),
    key: ApiKey = Depends(reader),
) -> Response:
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise ApiError(422, f"{name} needs a UTC offset", field=name)
    async with request.app.state.services.pool.acquire() as conn:
        rows = await store.history(conn, since=since, until=until, after_seq=after, limit=limit)
    return json_response([_row(r) for r in rows])


class Acknowledgment(BaseModel):
    by: str | None = Field(None, max_length=128, description="who acknowledges; default the key's name")
    comment: str | None = Field(None, max_length=2000)


@router.post("/v1/alerts/{alert_id}/ack", summary="Acknowledge an alert (stops repeats and escalation)")
async def acknowledge(
    request: Request, alert_id: str, body: Acknowledgment, key: ApiKey = Depends(operator)
) -> Response:
    result = await _service(request).acknowledge(alert_id, body.by or key.name, body.comment)
    if result is None:
        raise ApiError(404, f"no alert {alert_id!r}", field="alert_id")
    return json_response(result)


class MatcherIn(BaseModel):
    """A structured matcher: the value is taken as it is (a regex only with ``=~`` or ``!~``)."""

    name: str = Field(..., pattern=NAME_PATTERN, max_length=128, examples=["sku"])
    op: MatchOp = Field(..., examples=["="])
    value: str = Field(..., max_length=MAX_VALUE_LENGTH, examples=["SKU-1001"])


class SilenceIn(BaseModel):
    matchers: list[MatcherIn | str] = Field(
        ...,
        min_length=1,
        max_length=20,
        description='structured, e.g. [{"name": "sku", "op": "=", "value": "SKU-1001"}],'
        " or the operator-typed text form"
        ' ["sku=SKU-1001", "rule=~stock_.*"] (quote a value to take it literally: sku="~x")',
    )
    starts_at: datetime | None = Field(None, description="default now")
    ends_at: datetime
    reason: str = Field(..., min_length=1, max_length=500)
    created_by: str | None = Field(None, max_length=128)


def _silence(silence: Any) -> dict[str, Any]:
    return {
        "id": silence.id,
        "matchers": msgspec.to_builtins(silence.matchers),
        "starts_at": datetime.fromtimestamp(silence.starts_at, UTC),
        "ends_at": datetime.fromtimestamp(silence.ends_at, UTC),
        "reason": silence.reason,
        "created_by": silence.created_by,
    }


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


@router.get("/v1/silences", summary="Active and upcoming silences")
async def list_silences(request: Request, key: ApiKey = Depends(reader)) -> Response:
    return json_response([_silence(s) for s in _service(request).silences])


@router.post("/v1/silences", status_code=201, summary="Silence matching alerts for a planned event")
async def add_silence(request: Request, body: SilenceIn, key: ApiKey = Depends(operator)) -> Response:
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
    silence = await _service(request).add_silence(
        matchers, starts.timestamp(), body.ends_at.timestamp(), body.reason, body.created_by or key.name
    )
    return json_response(_silence(silence), 201)


@router.delete("/v1/silences/{silence_id}", status_code=204, summary="Expire a silence now")
async def expire_silence(request: Request, silence_id: str, key: ApiKey = Depends(operator)) -> Response:
    if not await _service(request).expire_silence(silence_id):
        raise ApiError(404, f"no active silence {silence_id!r}", field="silence_id")
    return Response(status_code=204)


@router.get("/v1/rules", summary="Loaded rules and their last evaluation")
async def rules(request: Request, key: ApiKey = Depends(reader)) -> Response:
    service = _service(request)
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
            {
                "name": rule.name,
                "kind": kind,
                "campaign": rule.campaign,
                "by": rule.by,
                "definition": msgspec.to_builtins(rule),
                "series_evaluated": status.series if status else 0,
                "series_triggered": status.triggered if status else 0,
                "firing": firing.get(rule.name, 0),
                "last_evaluated_at": status.last_evaluated_at if status else None,
            }
        )
    return json_response(
        {"rules": out, "eval_ms": service.eval_ms, "inhibit": msgspec.to_builtins(service.rules.inhibit)}
    )


@router.post("/v1/rules/reload", summary="Reload rule files; alert state is kept; an invalid file changes nothing")
async def reload_rules(request: Request, key: ApiKey = Depends(operator)) -> Response:
    try:
        count = _service(request).reload()
    except ConfigError as exc:
        raise ApiError(422, str(exc), field=exc.field) from None
    return json_response({"rules": count})
