"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from app import telemetry
from app.database import current_revision
from app.services import Services

READY_TIMEOUT_S = 2.0

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and its schema is current")
async def readyz(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            async with services.pool.acquire() as conn:
                revision = await current_revision(conn)
        checks["database"] = "ok"
        checks["migrations"] = "ok" if revision == services.schema_head else f"at {revision}, code expects {services.schema_head}"
    except Exception as exc:  # any failure to reach the database means not ready
        checks["database"] = f"unreachable: {type(exc).__name__}: {exc}"
        checks["migrations"] = "unknown"
    ready = all(v == "ok" for v in checks.values())
    telemetry.DATABASE_UP.set(1 if checks["database"] == "ok" else 0)
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503)
