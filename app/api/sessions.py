"""``/v1/sessions``: sign a page in with a key (once), see the session, sign out."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import msgspec
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.access import sessions
from app.access.auth import READ_SCOPES, authenticate, current_session, presented_key
from app.access.keys import MAX_KEY_LENGTH, ApiKey
from app.api import schemas
from app.api.payloads import read_struct
from app.api.responses import json_response
from app.api.services import AppSettings, Pool, Sessions
from app.core.errors import ApiError, api_error_response

router = APIRouter(tags=["sessions"])


class SignIn(msgspec.Struct):
    key: Annotated[
        Annotated[str, msgspec.Meta(max_length=MAX_KEY_LENGTH)] | None,
        msgspec.Meta(description="an operator or screen key (or send it in a header)"),
    ] = None


class SessionView(msgspec.Struct, omit_defaults=True):
    """Who a session signs in and until when; only ``signed_in`` (false) when there is none."""

    signed_in: bool
    name: str | None = None
    scope: str | None = None
    expires_at: datetime | None = None


def _described(key: ApiKey, expires: datetime) -> SessionView:
    return SessionView(signed_in=True, name=key.name, scope=key.scope, expires_at=expires)


@router.post(
    "/v1/sessions",
    status_code=201,
    summary="Exchange an operator or screen key for a session cookie",
    responses=schemas.responses(SessionView, status=201, description="Signed in (Set-Cookie)"),
    openapi_extra=schemas.request_body(SignIn, "The key to sign in with (or {} with the key in a header)"),
)
async def sign_in(request: Request, pool: Pool, settings: AppSettings) -> Response:
    body = await read_struct(request, SignIn)
    key = await authenticate(request, body.key or presented_key(request), READ_SCOPES)
    async with pool.acquire() as conn:
        token, expires = await sessions.create(conn, key, timedelta(hours=settings.session_hours))
    response = json_response(_described(key, expires), 201)
    max_age = int(settings.session_hours * 3600)
    response.headers["Set-Cookie"] = sessions.cookie_header(token, max_age, sessions.secure(request))
    response.headers["Cache-Control"] = "no-store"
    return response


async def _live_session(request: Request) -> sessions.Session | None:
    """The request's live session; None also when its cookie names a dead one (429/403/503 still refuse)."""
    try:
        return await current_session(request)
    except ApiError as exc:
        if exc.status != 401:
            raise
        return None


@router.get(
    "/v1/sessions/current",
    summary="Who the session cookie signs in, and until when (signed_in false if none)",
    responses=schemas.responses(SessionView),
)
async def current(request: Request) -> Response:
    found = await _live_session(request)
    if found is None:
        response = json_response(SessionView(signed_in=False))
        if sessions.COOKIE in request.cookies:
            response.headers["Set-Cookie"] = sessions.cookie_header("", 0, sessions.secure(request))
        return response
    return json_response(_described(*found))


@router.delete(
    "/v1/sessions/current",
    status_code=204,
    summary="Sign out: the session ends now",
    responses=schemas.responses(status=204, description="Signed out (the cookie is cleared)"),
)
async def sign_out(request: Request, store: Sessions) -> Response:
    """204; the cookie is cleared also when the server could not finish (429, or 503 when the session row could not
    be deleted), so the browser is signed out all the same. Not on a 403: a request another site may have forged
    changes nothing."""
    try:
        if await _live_session(request) is not None:
            await store.end(request.cookies[sessions.COOKIE])
        response = Response(status_code=204)
    except ApiError as exc:
        if exc.status == 403:
            raise
        response = api_error_response(exc)
    response.headers["Set-Cookie"] = sessions.cookie_header("", 0, sessions.secure(request))
    return response
