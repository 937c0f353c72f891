"""``/docs``: Swagger UI served from this server (the packaged bundle), not from a CDN.

Screens and on-call phones often have no internet, and the Content-Security-
Policy admits only this origin's scripts, so the page, its start-up script and
the Swagger UI bundle are all served here.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import APIRouter
from starlette.responses import FileResponse, Response

from app.core.errors import ApiError

DOCS_PATH = "/docs"
STATIC = Path(__file__).parent / "static"
BUNDLE = Path(swagger_ui_bundle.swagger_ui_path)
ASSETS = {
    "docs.js": (STATIC / "docs.js", "text/javascript"),
    "swagger-ui-bundle.js": (BUNDLE / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (BUNDLE / "swagger-ui.css", "text/css"),
    "favicon-32x32.png": (BUNDLE / "favicon-32x32.png", "image/png"),
}

router = APIRouter(include_in_schema=False)


@router.get(DOCS_PATH)
async def page() -> Response:
    return FileResponse(STATIC / "docs.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get(DOCS_PATH + "/{asset}")
async def asset(asset: str) -> Response:
    if asset not in ASSETS:
        raise ApiError(404, f"no API docs asset {asset!r}", field="asset")
    path, media_type = ASSETS[asset]
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"})
