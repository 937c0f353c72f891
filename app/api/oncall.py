"""The on-call page (``/oncall``): active alerts by severity, live over the alert stream, with
acknowledge and silence buttons. One static page; the data needs a session (an operator key, or a screen
key for view only, exchanged once for an HttpOnly cookie: ``app.access.sessions``) or a screen key in ``?token=``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, Response

from app.core.errors import ApiError

STATIC = Path(__file__).parent / "static"
ASSETS = {"oncall.js": "text/javascript", "oncall.css": "text/css"}

router = APIRouter(include_in_schema=False)


@router.get("/oncall")
async def page() -> Response:
    return FileResponse(STATIC / "oncall.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/oncall/{asset}")
async def asset(asset: str) -> Response:
    if asset not in ASSETS:
        raise ApiError(404, f"no on-call page asset {asset!r}", field="asset")
    return FileResponse(STATIC / asset, media_type=ASSETS[asset], headers={"Cache-Control": "no-cache"})
