"""HTTP endpoints integrators post events to: ``/v1/events`` and the Segment-compatible ``/v1/batch``,
``/v1/track``, ``/v1/page``, ``/v1/screen``."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.access.auth import authenticate, presented_key
from app.api import schemas
from app.api.payloads import ANY_CONTENT_TYPE, read_body, too_deep_error
from app.api.responses import json_response
from app.api.services import AppSettings, Committer, ingest_services
from app.core import telemetry
from app.core.errors import DATABASE_EXCEPTIONS, ApiError, api_error_response, database_error_response, refused_response
from app.core.settings import Settings
from app.ingest import segment
from app.ingest.events import (
    EXAMPLES,
    Defaults,
    FieldError,
    Row,
    claimed_type,
    decode_batch,
    decode_event,
    json_schema,
    mend_surrogates,
    utcnow,
)
from app.ingest.group_commit import CommitResult, GroupCommitter, IngestUnavailable

INGEST_SCOPES = ("ingest",)
EVENTS_PATH = "/v1/events"
SEGMENT_PATHS = frozenset(segment.ENDPOINTS)
"""Every Segment-compatible path, the one-letter ones of analytics.js included: their bodies may carry the key
inside."""
_BYTE_OFFSET = re.compile(r"\(byte (\d+)\)")

router = APIRouter(tags=["ingest"])


class ItemError(msgspec.Struct):
    field: str | None
    message: str


class Rejection(msgspec.Struct):
    index: int
    errors: list[ItemError]


class IngestReport(msgspec.Struct):
    """What happened to the posted events. Sent only after the accepted events are committed."""

    accepted: int
    duplicates: int
    rejected: list[Rejection]


class SegmentReport(msgspec.Struct):
    """An ``IngestReport`` with Segment's ``success`` flag first, as its clients expect."""

    success: bool
    accepted: int
    duplicates: int
    rejected: list[Rejection]


def _openapi_body() -> dict[str, Any]:
    event, _ = json_schema()
    batch = {
        "type": "object",
        "required": ["events"],
        "additionalProperties": False,
        "properties": {"events": {"type": "array", "maxItems": 10_000, "items": event}},
    }
    examples = {name: {"summary": f"one {name} event", "value": value} for name, value in EXAMPLES.items()}
    examples["batch"] = {"summary": "a batch", "value": {"events": list(EXAMPLES.values())}}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": [event, batch]}, "examples": examples}},
        }
    }


def _malformed(exc: msgspec.DecodeError, body: bytes) -> ApiError:
    """A 400 that says where the JSON breaks (line, column and byte offset)."""
    match = _BYTE_OFFSET.search(str(exc))
    if not match:
        return ApiError(400, f"body is not valid JSON: {exc}")
    offset = int(match.group(1))
    line = body.count(b"\n", 0, offset) + 1
    column = offset - (body.rfind(b"\n", 0, offset) + 1) + 1
    reason = str(exc).split(": ", 1)[-1].replace(match.group(0), "").strip()
    return ApiError(400, f"malformed JSON at line {line}, column {column} (byte {offset}): {reason}")


def _decode(body: bytes, kind: Any, shape: str) -> Any:
    """``body`` decoded as ``kind``; a 400 that says where the JSON breaks, or ``shape`` when it is JSON of another
    shape."""
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError:  # a subclass of DecodeError: the JSON is fine, its shape is not
        raise ApiError(400, shape) from None
    except msgspec.DecodeError as exc:
        raise _malformed(exc, body) from None
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"body is not valid UTF-8 at byte {exc.start}") from None
    except RecursionError:
        raise too_deep_error(body) from None


def _decode_object(body: bytes) -> dict[str, msgspec.Raw]:
    return _decode(body, dict[str, msgspec.Raw], 'body must be a JSON object: one event, or {"events": [...]}')


def _claims_in_batch(body: bytes) -> Callable[[int], str]:
    """``claimed`` for a ``{"events": [...]}`` body that decoded whole: its items are split out once, on the
    first rejected one (a body without rejections never pays for it)."""
    items: list[msgspec.Raw] = []

    def claimed(index: int) -> str:
        if not items:
            items.extend(
                msgspec.json.decode(
                    msgspec.json.decode(body, type=dict[str, msgspec.Raw])["events"], type=list[msgspec.Raw]
                )
            )
        return claimed_type(items[index])

    return claimed


def _decode_list(raw: msgspec.Raw, field: str, limit: int) -> list[msgspec.Raw]:
    try:
        items = msgspec.json.decode(raw, type=list[msgspec.Raw])
    except msgspec.ValidationError:
        raise ApiError(422, f"{field} must be an array", field=field) from None
    except RecursionError:
        raise too_deep_error(bytes(raw)) from None
    if len(items) > limit:
        raise ApiError(413, f"{field} holds {len(items)} events; the limit is {limit} per request", field=field)
    return items


async def _store(committer: GroupCommitter, rows: list[Row]) -> CommitResult:
    if not rows:
        return CommitResult(0, 0)
    try:
        return await committer.submit(rows)
    except IngestUnavailable as exc:
        raise ApiError(503, f"events not stored: {exc.reason}", headers={"Retry-After": str(exc.retry_after)}) from None


async def _ingest(
    settings: Settings,
    committer: GroupCommitter,
    checked: Iterable[tuple[Row | None, list[FieldError]]],
    claimed: Callable[[int], str] = lambda index: "invalid",
) -> IngestReport:
    """Store the valid rows of a request (``checked``: per posted item, its row or its errors) and report;
    ``claimed`` gives the type a rejected item claims (its ``events_total`` label). An event whose value
    PostgreSQL refuses is rejected like an invalid one, by its index; the others are stored."""
    rows: list[Row] = []
    positions: list[int] = []
    """The request index of each row."""
    rejected: list[Rejection] = []
    index = -1
    for index, (row, errors) in enumerate(checked):
        if row is None:
            rejected.append(Rejection(index, [ItemError(e.field, e.message) for e in errors]))
        else:
            rows.append(row)
            positions.append(index)
    telemetry.REQUEST_EVENTS.observe(index + 1)
    for label, count in Counter(claimed(item.index) for item in rejected).items():
        telemetry.EVENTS.labels(type=label, outcome="rejected").inc(count)
    result = await _store(committer, rows)
    if result.refused:
        rejected += [Rejection(positions[i], [ItemError(None, reason)]) for i, reason in result.refused]
        rejected.sort(key=lambda item: item.index)
    return IngestReport(result.accepted, result.duplicates, rejected)


def _defaults(settings: Settings) -> Defaults:
    return Defaults(campaign=settings.default_campaign, currency=settings.default_currency)


@router.post(
    EVENTS_PATH,
    status_code=202,
    summary="Post one event or a batch",
    responses={
        **schemas.responses(
            IngestReport,
            status=202,
            description="Stored (the accepted events are committed); rejected items are listed by index",
            errors={
                400: "Malformed JSON (with line and column)",
                401: "Missing, wrong or revoked key",
                403: "Key lacks the ingest scope",
                413: "Body over 5 MB or more than 10,000 events",
                415: "Content-Type is not application/json",
                429: "Rate limit exceeded (Retry-After)",
                503: "Database unavailable, queue full or commit timed out: retry the same events (Retry-After); "
                "duplicates are reported as such",
            },
        ),
        422: schemas.response(
            IngestReport,
            schemas.ErrorBody,
            description="A single posted event was rejected (same body as 202), or the batch's shape is invalid",
        ),
    },
    openapi_extra=_openapi_body(),
)
async def post_events(request: Request) -> Response:
    """Store events idempotently by ``event_id``.

    Answers only after the accepted events are committed. Valid events of a
    batch are stored even when others are rejected; a single event that is
    invalid is answered with 422 and the same report shape.
    """
    await authenticate(request, presented_key(request), INGEST_SCOPES)
    services = ingest_services(request)  # not a dependency: ``serve_events`` calls this outside FastAPI
    settings, committer = services.settings, services.committer
    body = mend_surrogates(await read_body(request, settings.max_body_bytes))
    now, defaults = utcnow(), _defaults(settings)
    checked = decode_batch(body, settings.max_batch_events, now, defaults)
    if checked is not None:
        return json_response(await _ingest(settings, committer, checked, _claims_in_batch(body)), 202)
    top = _decode_object(body)
    if "events" in top:
        extra = sorted(set(top) - {"events"})
        if extra:
            raise ApiError(422, f"unknown field {extra[0]!r} next to events", field=extra[0])
        items: list[Any] = _decode_list(top["events"], "events", settings.max_batch_events)
        single = False
    else:
        items = [body]
        single = True
    report = await _ingest(
        settings,
        committer,
        (decode_event(raw, now, defaults) for raw in items),
        lambda index: claimed_type(items[index]),
    )
    return json_response(report, 422 if single and report.rejected else 202)


async def serve_events(scope: Scope, receive: Receive, send: Send) -> None:
    """``POST /v1/events`` as a plain ASGI endpoint: the same handler and error answers as through the
    router, without FastAPI's routing, dependency solving and middleware, which profiling put at
    about 40% of a single-event request's CPU. The route above still documents it in OpenAPI."""
    request = Request(scope, receive)
    try:
        response = await post_events(request)
    except ApiError as exc:
        response = api_error_response(exc)
    except asyncpg.DataError as exc:
        response = refused_response(exc)
    except DATABASE_EXCEPTIONS as exc:
        response = database_error_response(request, exc)
    await response(scope, receive, send)


def _segment_messages(body: bytes, call: str | None, limit: int) -> tuple[dict[str, Any], list[Any]]:
    payload: dict[str, Any] = _decode(body, dict[str, Any], "body must be a JSON object")
    if call is not None:
        return payload, [{**payload, "type": payload.get("type", call)}]
    batch = payload.get("batch")
    if not isinstance(batch, list):
        raise ApiError(422, "batch must be an array of messages", field="batch")
    if len(batch) > limit:
        raise ApiError(413, f"batch holds {len(batch)} messages; the limit is {limit} per request", field="batch")
    shared_context = payload.get("context")
    if isinstance(shared_context, dict):
        batch = [_with_context(m, shared_context) for m in batch]
    return payload, batch


def _with_context(message: Any, shared: dict[str, Any]) -> Any:
    """A batch-level ``context`` applies to each message, the message's own keys winning."""
    if not isinstance(message, dict) or not isinstance(message.get("context", {}), dict):
        return message
    return {**message, "context": {**shared, **message.get("context", {})}}


MAX_CLOCK_SKEW = timedelta(days=1)
"""A sender whose clock is off by more than this is not corrected (its sentAt is not believable)."""


def _clock_skew(payload: dict[str, Any], now: datetime) -> timedelta:
    sent_at = segment.instant(payload.get("sentAt"))
    if sent_at is None:
        return timedelta(0)
    skew = now - sent_at
    return skew if abs(skew) <= MAX_CLOCK_SKEW else timedelta(0)


def _segment_event(
    message: Any, now: datetime, defaults: Defaults, skew: timedelta
) -> tuple[Row | None, list[FieldError]]:
    """One decoded Segment message as an event; nested too deep to convert, it is that message's error."""
    try:
        return segment.to_event(message, now, defaults, skew)
    except RecursionError:
        return None, [FieldError(None, "the message nests arrays/objects too deeply to convert")]


async def _read_segment_body(request: Request, settings: Settings, keyless: bool) -> bytes:
    """The body, decompressed; one carrying its key only inside (``writeKey``) is read before the key is
    checked, so it is held to the keyless limit after gunzip too, not only on the wire."""
    if not keyless:
        return await read_body(request, settings.max_body_bytes, ANY_CONTENT_TYPE)
    limit = settings.max_keyless_body_bytes
    try:
        return await read_body(request, limit, ANY_CONTENT_TYPE)
    except ApiError as exc:
        if exc.status != 413:
            raise
        raise ApiError(
            413,
            f"{exc.message}: a body whose key is only inside it (writeKey) is held to {limit} bytes, "
            "compressed or not; send the key in the Authorization header for the larger ingest limit",
        ) from None


async def _segment(request: Request, call: str | None, settings: Settings, committer: GroupCommitter) -> Response:
    token = presented_key(request)
    if token is not None:
        await authenticate(request, token, INGEST_SCOPES)
    body = mend_surrogates(await _read_segment_body(request, settings, keyless=token is None))
    payload, messages = _segment_messages(body, call, settings.max_batch_events)
    if token is None:
        write_key = payload.get("writeKey")
        await authenticate(request, write_key if isinstance(write_key, str) else None, INGEST_SCOPES)
    now, defaults = utcnow(), _defaults(settings)
    skew = _clock_skew(payload, now)
    report = await _ingest(settings, committer, (_segment_event(m, now, defaults, skew) for m in messages))
    return json_response(SegmentReport(True, report.accepted, report.duplicates, report.rejected), 200)


SEGMENT_MESSAGE = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": ["track", "page", "screen"]},
        "event": {"type": "string", "examples": ["Order Completed"]},
        "messageId": {
            "type": "string",
            "maxLength": 128,
            "description": "if absent, derived from the message's content",
        },
        "userId": {"type": "string"},
        "anonymousId": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "properties": {"type": "object"},
        "context": {"type": "object"},
    },
}
SEGMENT_EXAMPLE = {
    "type": "track",
    "event": "Order Completed",
    "messageId": "ajs-5f1c2a",
    "userId": "u-8812",
    "timestamp": "2026-11-11T00:00:03+08:00",
    "properties": {"order_id": "o-000123", "total": 598.0, "currency": "CNY", "channel": "app"},
}


def _segment_body(schema: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema, "example": example}}}}


SEGMENT_BATCH_BODY = _segment_body(
    {
        "type": "object",
        "required": ["batch"],
        "properties": {
            "batch": {"type": "array", "items": SEGMENT_MESSAGE},
            "sentAt": {"type": "string", "format": "date-time"},
            "context": {"type": "object"},
            "writeKey": {"type": "string"},
        },
    },
    {"batch": [SEGMENT_EXAMPLE], "sentAt": "2026-11-11T00:00:04+08:00"},
)
SEGMENT_SINGLE_BODY = _segment_body(SEGMENT_MESSAGE, SEGMENT_EXAMPLE)

SEGMENT_RESPONSES = schemas.responses(
    SegmentReport,
    description="Stored; rejected messages are listed by index",
    errors={
        401: "Missing, wrong or revoked write key",
        413: "Body or batch too large",
        503: "Not stored; retry (Retry-After)",
    },
)


SEGMENT_DOCUMENTED: dict[str, tuple[str, str, dict[str, Any]]] = {
    "/v1/batch": (
        "segment_batch",
        'Segment HTTP Tracking API batch: ``{"batch": [messages], "sentAt": ...}``; write key as Basic-auth user.',
        SEGMENT_BATCH_BODY,
    ),
    "/v1/track": (
        "segment_track",
        'One Segment track call, e.g. ``{"event": "Order Completed", "messageId": ..., "properties": {...}}``.',
        SEGMENT_SINGLE_BODY,
    ),
    "/v1/page": ("segment_page", "One Segment page call, stored as a ``page_view`` event.", SEGMENT_SINGLE_BODY),
    "/v1/screen": (
        "segment_screen",
        "One Segment screen call (mobile apps), stored as a ``page_view`` event.",
        SEGMENT_SINGLE_BODY,
    ),
}
"""The Segment paths ``/openapi.json`` documents (name, description, body); the rest of ``segment.ENDPOINTS``
(analytics.js's one-letter paths; identify, group and alias, whose messages are reported as not stored) are
served the same way, undocumented."""


def _segment_call(call: str | None) -> Callable[[Request, Settings, GroupCommitter], Awaitable[Response]]:
    """The endpoint of one Segment call (``None``: a batch)."""

    async def endpoint(request: Request, settings: AppSettings, committer: Committer) -> Response:
        return await _segment(request, call, settings, committer)

    return endpoint


for _path, _call in segment.ENDPOINTS.items():
    if _path in SEGMENT_DOCUMENTED:
        _name, _description, _body = SEGMENT_DOCUMENTED[_path]
        router.add_api_route(
            _path,
            _segment_call(_call),
            methods=["POST"],
            name=_name,
            description=_description,
            tags=["segment"],
            responses=SEGMENT_RESPONSES,
            openapi_extra=_body,
        )
    else:
        router.add_api_route(_path, _segment_call(_call), methods=["POST"], include_in_schema=False)
