"""``GET /v1/notifications``: what was sent to which contact point, every attempt, and the last error.

Contact point URLs carry secrets (bot tokens, webhook keys): the API shows
each URL only as Apprise prints it in privacy mode.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from fastapi import APIRouter, Query
from starlette.responses import Response

from alerts.notify import outbox
from app.api import schemas
from app.api.responses import json_response
from app.api.services import Delivery, Operator, Pool

MAX_LIST = 500

router = APIRouter(tags=["alerts"])


class Notification(outbox.Notification):
    """One outgoing message to one target of a contact point (``target`` in privacy form), with its attempts."""

    target: str


class ContactPointView(msgspec.Struct):
    name: str
    targets: list[str]
    send_resolved: bool
    language: str


class EscalationStep(msgspec.Struct):
    after_s: float
    receiver: str


class RouteView(msgspec.Struct):
    """A route of the routing tree with what it inherits filled in; ``path`` is its place (``0.2.1``)."""

    path: str
    receiver: str | None
    group_by: list[str]
    group_wait_s: float
    group_interval_s: float
    repeat_interval_s: float
    escalate: list[EscalationStep]


class ContactPoints(msgspec.Struct):
    contact_points: list[ContactPointView]
    routes: list[RouteView]


@router.get(
    "/v1/notifications",
    summary="Outgoing notifications, newest first, with their delivery attempts",
    responses=schemas.responses(list[Notification]),
)
async def notifications(
    pool: Pool,
    delivery: Delivery,
    key: Operator,
    status: Literal["pending", "delivered", "failed"] | None = None,
    contact_point: str | None = Query(None, max_length=64),
    before: int | None = Query(None, ge=1, description="only notifications with id < before (next page)"),
    limit: int = Query(100, ge=1, le=MAX_LIST),
) -> Response:
    async with pool.acquire() as conn:
        rows = await outbox.notifications(
            conn, status=status, contact_point=contact_point, before_id=before, limit=limit
        )
    return json_response(
        [
            Notification(
                **msgspec.structs.asdict(row),
                target=delivery.target(row.contact_point, row.url_id) or "(no longer configured)",
            )
            for row in rows
        ]
    )


@router.get(
    "/v1/contact-points",
    summary="Configured contact points (URLs in privacy form) and routes",
    responses=schemas.responses(ContactPoints),
)
async def contact_points(delivery: Delivery, key: Operator) -> Response:
    routing = delivery.routing
    return json_response(
        ContactPoints(
            contact_points=[
                ContactPointView(
                    name=name,
                    targets=delivery.targets(name),
                    send_resolved=point.send_resolved,
                    language=point.language,
                )
                for name, point in routing.contact_points.items()
            ],
            routes=[
                RouteView(
                    path=r.path,
                    receiver=r.receiver,
                    group_by=list(r.group_by),
                    group_wait_s=r.group_wait,
                    group_interval_s=r.group_interval,
                    repeat_interval_s=r.repeat_interval,
                    escalate=[EscalationStep(after_s=after, receiver=receiver) for after, receiver in r.escalate],
                )
                for r in routing.routes
            ],
        )
    )
