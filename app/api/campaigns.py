"""Campaign endpoints: definitions (operator), live snapshot, series, stock table, and a snapshot stream."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Literal

import msgspec
from fastapi import APIRouter, Query, WebSocket
from starlette.requests import Request
from starlette.responses import Response

from app.access.auth import READ_SCOPES, authenticate, presented_key, still_allowed
from app.api import schemas
from app.api.payloads import read_body
from app.api.responses import json_response
from app.api.services import Metrics, Operator, Pool, Reader
from app.api.streams import push_until_disconnect
from app.campaigns import model, store
from app.core.configfile import ConfigError
from app.core.errors import ApiError
from app.metrics.engine import SERIES_METRICS, Engine
from app.metrics.series import ITEM_SECONDS_KEPT, SECONDS_KEPT
from app.metrics.snapshot import SeriesLine, SkuRow, Snapshot, UndefinedReport

MAX_CAMPAIGN_BYTES = 1024 * 1024
STEPS = {"1s": 1, "1m": 60}
MAX_SERIES_POINTS = 100_000

router = APIRouter(tags=["campaigns"])


class PhaseSpan(msgspec.Struct):
    start: datetime
    end: datetime


class CampaignSummary(msgspec.Struct):
    """A campaign in the list: its phase now, its phases' spans and how many SKUs its catalog holds."""

    id: str
    name: str
    name_zh: str | None
    phase: str | None
    phases: dict[str, PhaseSpan]
    baseline: str | None
    skus: int


class SeriesAnswer(msgspec.Struct):
    campaign: str
    metric: str
    step: str
    series: list[SeriesLine]


def _summary(campaign: model.Campaign, now: datetime) -> CampaignSummary:
    return CampaignSummary(
        id=campaign.id,
        name=campaign.name,
        name_zh=campaign.name_zh,
        phase=campaign.phase_at(now),
        phases={name: PhaseSpan(p.start, p.end) for name, p in campaign.phases.items()},
        baseline=campaign.baseline,
        skus=len(campaign.skus),
    )


def _known(engine: Engine, campaign_id: str) -> None:
    if campaign_id not in engine.campaigns and campaign_id not in engine.states:
        raise ApiError(
            404, f"no campaign {campaign_id!r} is defined (see GET /v1/undefined-campaigns)", field="campaign_id"
        )


@router.get(
    "/v1/campaigns", summary="Campaigns and their current phase", responses=schemas.responses(list[CampaignSummary])
)
async def list_campaigns(metrics: Metrics, key: Reader) -> Response:
    engine, wall = metrics.engine, metrics.clock()
    return json_response([_summary(c, engine.clock(c.id, wall).moment) for c in engine.campaigns.values()])


@router.get(
    "/v1/undefined-campaigns",
    summary="Events naming campaigns that are not defined, per name",
    responses=schemas.responses(UndefinedReport),
)
async def undefined_campaigns(metrics: Metrics, key: Reader) -> Response:
    """Such events are stored but counted by no campaign until it is defined; a typo or a missing definition shows
    here."""
    return json_response(metrics.engine.undefined.report())


@router.get(
    "/v1/campaigns/{campaign_id}", summary="A campaign's definition", responses=schemas.responses(model.Campaign)
)
async def get_campaign(campaign_id: str, metrics: Metrics, key: Reader) -> Response:
    campaign = metrics.engine.campaigns.get(campaign_id)
    if campaign is None:
        raise ApiError(404, f"no campaign {campaign_id!r}", field="campaign_id")
    return json_response(campaign)


@router.put(
    "/v1/campaigns/{campaign_id}",
    summary="Create or replace a campaign (YAML or JSON body)",
    responses={
        **schemas.responses(model.Campaign, description="Replaced"),
        201: schemas.response(model.Campaign, description="Created"),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    },
)
async def put_campaign(request: Request, campaign_id: str, pool: Pool, metrics: Metrics, key: Operator) -> Response:
    body = await read_body(
        request, MAX_CAMPAIGN_BYTES, ("application/json", "application/yaml", "application/x-yaml", "text/yaml")
    )
    try:
        campaign = await asyncio.to_thread(model.parse, body.decode("utf-8"), "body")
    except UnicodeDecodeError:
        raise ApiError(400, "body must be UTF-8") from None
    except ConfigError as exc:
        raise ApiError(422, str(exc), field=exc.field) from None
    if campaign.id != campaign_id:
        raise ApiError(422, f"id {campaign.id!r} in the body does not match {campaign_id!r} in the path", field="id")
    async with pool.acquire() as conn:
        created = await store.save(conn, campaign)
    await metrics.reload_campaigns()
    return json_response(campaign, 201 if created else 200)


@router.delete(
    "/v1/campaigns/{campaign_id}",
    status_code=204,
    summary="Delete a campaign definition (its events stay)",
    responses=schemas.responses(status=204, description="Deleted"),
)
async def delete_campaign(campaign_id: str, pool: Pool, metrics: Metrics, key: Operator) -> Response:
    async with pool.acquire() as conn:
        if not await store.delete(conn, campaign_id):
            raise ApiError(404, f"no campaign {campaign_id!r}", field="campaign_id")
    await metrics.reload_campaigns()
    return Response(status_code=204)


@router.get(
    "/v1/campaigns/{campaign_id}/snapshot",
    summary="Every current metric of a campaign, with as_of",
    responses=schemas.responses(Snapshot),
)
async def snapshot(campaign_id: str, metrics: Metrics, key: Reader) -> Response:
    _known(metrics.engine, campaign_id)
    return json_response(metrics.engine.snapshot(campaign_id, metrics.clock()))


def _instant(value: str | None, name: str, default: float) -> float:
    if value is None:
        return default
    try:
        moment = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        raise ApiError(422, f"{name} must be an RFC 3339 timestamp with offset, got {value!r}", field=name) from None
    if moment.tzinfo is None:
        raise ApiError(422, f"{name} needs a UTC offset", field=name)
    return moment.timestamp()


@router.get(
    "/v1/campaigns/{campaign_id}/series",
    summary="A metric over time, overall or by channel/SKU/category",
    responses=schemas.responses(SeriesAnswer),
)
async def series(
    campaign_id: str,
    metrics: Metrics,
    key: Reader,
    metric: str = Query(
        ..., description="a measure (gmv_paid, orders_paid, visits…), a ratio (conversion_rate…) or metric:<name>"
    ),
    step: Literal["1s", "1m"] = "1m",
    start: str | None = Query(None, alias="from", description="RFC 3339; default one hour before `to`"),
    end: str | None = Query(None, alias="to", description="RFC 3339; default now"),
    by: Literal["channel", "sku", "category"] | None = None,
) -> Response:
    _known(metrics.engine, campaign_id)
    if metric not in SERIES_METRICS and not metric.startswith("metric:"):
        raise ApiError(
            422, f"unknown metric {metric!r}; one of {', '.join(SERIES_METRICS)} or metric:<name>", field="metric"
        )
    now = metrics.engine.clock(campaign_id, metrics.clock()).now
    to = _instant(end, "to", now + 1)
    since = _instant(start, "from", to - 3600)
    if since >= to:
        raise ApiError(422, "from must be before to", field="from")
    if (to - since) / STEPS[step] > MAX_SERIES_POINTS:
        raise ApiError(
            422, f"at most {MAX_SERIES_POINTS} points per series; use step=1m or a shorter range", field="step"
        )
    kept = ITEM_SECONDS_KEPT if by in ("sku", "category") else SECONDS_KEPT
    if step == "1s" and since < now - kept:
        raise ApiError(
            422,
            f"1-second buckets{f' by {by}' if by else ''} are kept for the last {kept} s; use step=1m or a later from",
            field="from",
        )
    data = metrics.engine.series(campaign_id, metric, STEPS[step], since, to, by)
    return json_response(SeriesAnswer(campaign=campaign_id, metric=metric, step=step, series=data))


@router.get(
    "/v1/campaigns/{campaign_id}/skus",
    summary="Stock per SKU: on hand, sell rate, sell-out ETA",
    responses=schemas.responses(list[SkuRow]),
)
async def skus(
    campaign_id: str,
    metrics: Metrics,
    key: Reader,
    sort: Literal["eta", "sold", "sku"] = "eta",
) -> Response:
    _known(metrics.engine, campaign_id)
    return json_response(metrics.engine.skus(campaign_id, metrics.clock(), sort))


@router.websocket("/v1/campaigns/{campaign_id}/live")
async def live(websocket: WebSocket, campaign_id: str, metrics: Metrics) -> None:
    """Snapshots pushed as JSON text frames: the current one at once, then each update (a few per second at most)."""
    token = presented_key(websocket)
    scopes: tuple[str, ...] = READ_SCOPES
    if token is None:
        token, scopes = websocket.query_params.get("token"), ("screen",)
    await websocket.accept()
    try:
        await authenticate(websocket, token, scopes)
    except ApiError as exc:  # close codes 4401/4403/4429 tell a browser why (it cannot read an HTTP status)
        await websocket.close(code=4000 + exc.status, reason=exc.message[:120])
        return
    subscription = metrics.subscribe(campaign_id)

    async def push() -> None:
        async for update in subscription:
            await websocket.send_text(msgspec.json.encode(update).decode())

    try:
        await push_until_disconnect(websocket, push(), still_allowed(websocket, token))
    finally:
        metrics.unsubscribe(subscription)
