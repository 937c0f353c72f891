"""Liveness and readiness for load balancers and orchestrators.

``/readyz`` is 200 only when the database answers, its schema is the one the code expects and every
supervised loop of this process (``app.core.supervision``) is running; otherwise 503 with ``Retry-After``
and, per loop, its condition, restarts and last error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from starlette.responses import JSONResponse

from app.api.services import Pool, SchemaHead, Supervision
from app.core import telemetry
from app.core.database import current_revision
from app.core.errors import UNAVAILABLE_RETRY_AFTER_S

READY_TIMEOUT_S = 2.0

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable, its schema is current and no loop is dead or stalled")
async def readyz(pool: Pool, schema_head: SchemaHead, supervisor: Supervision) -> JSONResponse:
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
    loops: dict[str, Any] = {
        name: {
            "condition": found,
            "restarts": supervisor.loops[name].restarts,
            "last_error": supervisor.loops[name].last_error,
        }
        for name, found in sorted(conditions.items())
    }
    body = {"status": "ready" if ready else "not ready", "checks": checks, "loops": loops}
    if ready:
        return JSONResponse(body, 200)
    return JSONResponse(body, 503, headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)})
