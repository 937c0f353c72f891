"""One error shape for every failure the API reports: status, machine code, message, field.

An exception that escapes an endpoint because the database cannot be used now (connection refused or
lost, shutting down, the driver's state errors; see ``app.core.database.database_unavailable``) is a 503 with
``Retry-After``, so clients retry instead of seeing a plain-text 500; any other escaped error is a 500
in the same JSON shape, logged with its traceback.
"""

from __future__ import annotations

import logging

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from app.core.database import ENCODING_ERROR, database_unavailable

log = logging.getLogger(__name__)

UNAVAILABLE_RETRY_AFTER_S = 1
"""Retry-After of a 503 for a database that cannot be used now (outages usually last seconds)."""
UNAVAILABLE_MESSAGE = "temporarily unavailable: the database cannot be reached now; retry"
DATABASE_EXCEPTIONS = (OSError, asyncpg.InterfaceError, asyncpg.InternalClientError, asyncpg.PostgresError)
"""What the database can raise into an endpoint (``TimeoutError`` is an ``OSError``)."""

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
    500: "internal",
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
    return {
        "error": {
            "status": status,
            "code": code or STATUS_CODES.get(status, "error"),
            "message": message,
            "field": field,
        }
    }


def api_error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(error_body(exc.status, exc.message, exc.field, exc.code), exc.status, headers=exc.headers)


def refused_response(exc: Exception) -> JSONResponse:
    """PostgreSQL refused a value the client sent (e.g. a NUL character in text): the client's error, not ours."""
    return JSONResponse(error_body(422, f"a value was refused by the database: {exc}"), 422)


def unavailable_response(message: str = UNAVAILABLE_MESSAGE) -> JSONResponse:
    """503 with ``Retry-After``: nothing is wrong with the request, ask again shortly."""
    return JSONResponse(error_body(503, message), 503, headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)})


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


def database_error_response(request: Request, exc: Exception) -> JSONResponse:
    """The answer to a database exception that escaped an endpoint: 503 when the database cannot be
    used now, 422 for a value the driver could not send, else a logged 500."""
    if database_unavailable(exc):
        log.warning("%s %s: database unavailable: %r", request.method, request.url.path, exc)
        return unavailable_response()
    if isinstance(exc, ENCODING_ERROR):
        return refused_response(exc)
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body(500, "internal error"), 500)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    return database_error_response(request, exc)


def install(app: FastAPI) -> None:
    for database_exception in DATABASE_EXCEPTIONS:
        app.add_exception_handler(database_exception, _database_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(asyncpg.DataError, _refused_by_database)
