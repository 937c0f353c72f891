"""JSON responses encoded with msgspec (fast, and it understands Decimal, datetime and Structs)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response


def json_response(content: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(content), status, media_type="application/json")
