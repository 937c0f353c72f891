"""Liveness and readiness for load balancers and orchestrators.

``/readyz`` is 200 only when the database answers, its schema is the one the code expects and every
supervised loop of this process (``app.core.supervision``) is running; otherwise 503 with ``Retry-After``
and, per loop, its condition, restarts and last error.
"""

from __future__ import annotations

import asyncio

import msgspec
from fastapi import APIRouter
from starlette.responses import Response

from app.api import schemas
from app.api.responses import json_response
from app.api.services import Pool, SchemaHead, Supervision
from app.core import telemetry
from app.core.database import current_revision
from app.core.errors import UNAVAILABLE_RETRY_AFTER_S

READY_TIMEOUT_S = 2.0

router = APIRouter(tags=["operations"])


class Health(msgspec.Struct):
    status: str


class LoopState(msgspec.Struct):
    condition: str
    restarts: int
    last_error: str | None


class Readiness(msgspec.Struct):
    """``checks`` says ok or what is wrong with the database, the migrations and the supervised loops."""

    status: str
    checks: dict[str, str]
    loops: dict[str, LoopState]


@router.get("/healthz", summary="The process is alive", responses=schemas.responses(Health))
async def healthz() -> Response:
    return json_response(Health(status="ok"))


@router.get(
    "/readyz",
    summary="The database is reachable, its schema is current and no loop is dead or stalled",
    responses={
        **schemas.responses(Readiness, description="Ready"),
        503: schemas.response(Readiness, description="Not ready (Retry-After): the checks say why"),
    },
)
async def readyz(pool: Pool, schema_head: SchemaHead, supervisor: Supervision) -> Response:
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            async with pool.acquire() as conn:
                revision = await current_revision(conn)
        checks["database"] = "ok"
        checks["migrations"] = "ok" if revision == schema_head else f"at {revision}, code expects {schema_head}"
    except Exception as exc:  # any failure to reach the database means not ready
        checks["database"] = f"unreachable: {type(exc).__name__}: {exc}"
        checks["migrations"] = "unknown"
    conditions = await supervisor.check()
    failing = sorted(f"{name} {found}" for name, found in conditions.items() if found != "running")
    checks["loops"] = "ok" if not failing else ", ".join(failing)
    ready = all(v == "ok" for v in checks.values())
    telemetry.DATABASE_UP.set(1 if checks["database"] == "ok" else 0)
    loops = {
        name: LoopState(
            condition=found,
            restarts=supervisor.loops[name].restarts,
            last_error=supervisor.loops[name].last_error,
        )
        for name, found in sorted(conditions.items())
    }
    body = Readiness(status="ready" if ready else "not ready", checks=checks, loops=loops)
    if ready:
        return json_response(body, 200)
    response = json_response(body, 503)
    response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_S)
    return response
