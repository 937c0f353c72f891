"""Reading what a client sends: content type, size limits and gzip, before any parsing; small request bodies
decoded into msgspec Structs, with a refusal that names the field."""

from __future__ import annotations

import re
import zlib
from typing import TypeVar

import msgspec
from starlette.requests import Request

from app.core import nesting
from app.core.errors import ApiError

JSON = ("application/json",)
MAX_REQUEST_BYTES = 1 << 20
"""The limit of a small request body (an acknowledgment, a silence, a sign-in): far above any valid one."""
_PATH = re.compile(r" - at `\$(.*)`$")
_MISSING = re.compile(r"^Object missing required field `(.+)`$")
T = TypeVar("T")
ANY_CONTENT_TYPE = None
"""Segment's and RudderStack's servers read the body as JSON whatever its Content-Type: browser beacons say
text/plain, and rudder-sdk-node 3.1.1 gzips without one (axios then says application/x-www-form-urlencoded)."""


async def read_body(request: Request, max_bytes: int, content_types: tuple[str, ...] | None = JSON) -> bytes:
    """The request body, decompressed, at most ``max_bytes`` both on the wire and after gunzip;
    ``content_types`` None (``ANY_CONTENT_TYPE``) skips the Content-Type check."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_types is not None and content_type not in content_types:
        raise ApiError(
            415, f"Content-Type must be application/json, got {content_type or 'none'!r}", field="Content-Type"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, f"body is {declared} bytes; the limit is {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, f"body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        return _gunzip(body, max_bytes)
    if encoding not in ("identity", ""):
        raise ApiError(
            415, f"Content-Encoding {encoding!r} is not supported; use gzip or none", field="Content-Encoding"
        )
    return body


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise ApiError(400, f"body is not valid gzip: {exc}", field="Content-Encoding") from None
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise ApiError(413, f"decompressed body exceeds the limit of {max_bytes} bytes")
    if not inflater.eof:
        raise ApiError(400, "gzip body is truncated", field="Content-Encoding")
    return data


def too_deep_error(data: bytes, limit: int | None = None) -> ApiError:
    """The 400 for a body a decoder could not descend into (or that nests beyond ``limit``)."""
    bound = f"at most {limit} are accepted" if limit else "too deep to decode"
    return ApiError(
        400,
        f"JSON nests {nesting.depth(data)} levels of arrays/objects; {bound}"
        f" (event props: at most {nesting.MAX_PROPS_DEPTH})",
        code="too_deeply_nested",
    )


async def read_struct(request: Request, kind: type[T], max_bytes: int = MAX_REQUEST_BYTES) -> T:
    """The JSON body decoded as ``kind``; unknown fields are ignored. A body that is missing, not JSON or not of
    that shape is a 422 whose ``field`` is where it goes wrong (``body``, ``body.matchers.0.name``…)."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await read_body(request, max_bytes, None if not content_type else JSON)
    if not body.strip():
        raise ApiError(422, "body: a JSON object is required", field="body")
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise _invalid(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ApiError(422, f"body: not valid JSON: {exc}", field="body") from None
    except RecursionError:
        raise too_deep_error(body) from None


def _invalid(problem: str) -> ApiError:
    """msgspec's ``Expected `str`, got `int` - at `$.by``` as a 422 for ``body.by``."""
    match = _PATH.search(problem)
    path = match.group(1) if match else ""
    reason = problem[: match.start()] if match else problem
    if missing := _MISSING.match(reason):
        path, reason = f"{path}.{missing.group(1)}", "field required"
    field = "body" + re.sub(r"\[(\d+)\]", r".\1", path)
    return ApiError(422, f"{field}: {reason}", field=field)
