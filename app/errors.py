"""One error shape for every failure the API reports: status, machine code, message, field."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(Exception):
    """An error answered to the client as ``{"error": {...}}`` with the given status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.code = code or STATUS_CODES.get(status, "error")
        self.headers = headers


def error_body(status: int, message: str, field: str | None = None, code: str | None = None) -> dict:
    return {"error": {"status": status, "code": code or STATUS_CODES.get(status, "error"), "message": message, "field": field}}


def api_error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(error_body(exc.status, exc.message, exc.field, exc.code), exc.status, headers=exc.headers)


def refused_response(exc: asyncpg.DataError) -> JSONResponse:
    """PostgreSQL refused a value the client sent (e.g. a NUL character in text): the client's error, not ours."""
    return JSONResponse(error_body(422, f"a value was refused by the database: {exc}"), 422)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return api_error_response(exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(error_body(exc.status_code, str(exc.detail)), exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    details = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
    body = error_body(422, f"{field}: {first['msg']}", field)
    body["error"]["details"] = details
    return JSONResponse(body, 422)


async def _refused_by_database(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, asyncpg.DataError)
    return refused_response(exc)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(asyncpg.DataError, _refused_by_database)
