"""Every answer carries ``X-Content-Type-Options: nosniff``: also those given before FastAPI's stack sees the
request (admission refusals, the ``POST /v1/events`` fast path, CORS preflights) and the separate metrics port
(the protocol-level 431 is checked in ``test_connections``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RunningServer, create_key, event, free_port, start_server

ORIGIN = "https://shop.example"
MAX_BODY_BYTES = 2048


@pytest.fixture
def hardened(dsn: str) -> Iterator[tuple[RunningServer, int]]:
    """A server with browser origins and a metrics port configured, and that port."""
    metrics_port = free_port()
    server = start_server(
        dsn, WARROOM_CORS_ORIGINS=ORIGIN, WARROOM_METRICS_PORT=metrics_port, WARROOM_MAX_BODY_BYTES=MAX_BODY_BYTES
    )
    yield server, metrics_port
    server.stop()


async def _keyless_post(http: httpx.AsyncClient, dsn: str, metrics_port: int) -> httpx.Response:
    return await http.post("/v1/events", json=event("n-1"))


async def _too_large(http: httpx.AsyncClient, dsn: str, metrics_port: int) -> httpx.Response:
    key = await create_key(dsn, "ingest")
    return await http.post("/v1/events", content=b"x" * (MAX_BODY_BYTES + 1), headers={"X-API-Key": key})


async def _preflight(http: httpx.AsyncClient, dsn: str, metrics_port: int) -> httpx.Response:
    return await http.options("/v1/batch", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})


async def _cross_origin_refusal(http: httpx.AsyncClient, dsn: str, metrics_port: int) -> httpx.Response:
    return await http.post(
        "/v1/batch", json={"batch": []}, headers={"Origin": ORIGIN, "Authorization": "Bearer wr_unknown"}
    )


async def _accepted(http: httpx.AsyncClient, dsn: str, metrics_port: int) -> httpx.Response:
    key = await create_key(dsn, "ingest")
    return await http.post("/v1/events", json=event("n-2"), headers={"X-API-Key": key})


async def _metrics_port(http: httpx.AsyncClient, dsn: str, metrics_port: int) -> httpx.Response:
    return await http.get(f"http://127.0.0.1:{metrics_port}/metrics")


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (_keyless_post, 401),
        (_too_large, 413),
        (_preflight, 204),
        (_cross_origin_refusal, 401),
        (_accepted, 202),
        (_metrics_port, 200),
    ],
    ids=[
        "401 keyless post",
        "413 body too large",
        "CORS preflight",
        "cross-origin 401",
        "202 POST /v1/events",
        "metrics port",
    ],
)
async def test_answers_outside_fastapis_stack_carry_nosniff(dsn, hardened, request_, status):
    server, metrics_port = hardened
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await request_(http, dsn, metrics_port)
    assert response.status_code == status, response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers, "the HTML-only headers stay on HTML"
    if request_ in (_preflight, _cross_origin_refusal):
        assert response.headers["access-control-allow-origin"] == ORIGIN, "CORS headers are left as they are"
