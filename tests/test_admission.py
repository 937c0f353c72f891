"""Request bodies are admitted before anything reads them: key from the headers first, then size, time and
concurrency limits, so no client without a key can make the server hold memory."""

import asyncio
import time

import httpx
import pytest

from app.api.admission import KEYLESS_SHARE
from tests.conftest import create_key, event, start_server
from tests.rawhttp import closed_by_peer, connect, head, read_response, rss_bytes

MIB = 1024 * 1024
HUGE = 200 * MIB
RSS_SLACK = 16 * MIB
"""What a refused 200 MiB body may add to the process's resident memory (the report saw +489 MiB)."""


def send_until_refused(sock, total: int, chunk: bytes) -> int:
    """Send up to ``total`` bytes of body; return how many went out before the server closed the connection."""
    sent = 0
    try:
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


@pytest.mark.parametrize("path", ["/v1/silences", "/v1/alerts/a-1/ack", "/v1/campaigns/c-1", "/v1/events"])
def test_a_huge_body_without_key_is_refused_before_it_is_read(server, path):
    method = "PUT" if path.startswith("/v1/campaigns") else "POST"
    before = rss_bytes()
    sock = connect(server.port)
    sock.sendall(head(method, path, {"Content-Type": "application/json", "Content-Length": str(HUGE)}))
    response = read_response(sock, timeout=5)
    assert response.status == 401, response.body
    assert response.headers.get("connection") == "close"
    sent = send_until_refused(sock, HUGE, b" " * MIB)
    sock.close()
    assert sent < HUGE // 4, f"the server read {sent} bytes of a body it had refused"
    assert rss_bytes() - before < RSS_SLACK


def test_a_chunked_body_without_key_is_refused_before_it_is_read(server):
    before = rss_bytes()
    sock = connect(server.port)
    sock.sendall(head("POST", "/v1/silences", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
    assert read_response(sock, timeout=5).status == 401
    chunk = b"%x\r\n" % MIB + b" " * MIB + b"\r\n"
    assert send_until_refused(sock, HUGE, chunk) < HUGE // 4
    sock.close()
    assert rss_bytes() - before < RSS_SLACK


def test_keyless_segment_body_over_the_keyless_limit_is_413_at_once(server):
    """Segment beacons carry their key inside the body, so only a small one is read to find it; 100 such
    connections holding 4.9 MB bodies open hold no memory."""
    before = rss_bytes()
    socks = [connect(server.port) for _ in range(100)]
    for sock in socks:
        sock.sendall(head("POST", "/v1/batch", {"Content-Type": "application/json", "Content-Length": str(4_900_000)}))
    for sock in socks:
        response = read_response(sock, timeout=5)
        assert response.status == 413, response.body
        assert str(server.settings.max_keyless_body_bytes) in response.json()["error"]["message"]
    for sock in socks:  # the client sends its body anyway: the server discards it
        sock.sendall(b" " * 4_900_000)
    assert rss_bytes() - before < RSS_SLACK
    for sock in socks:
        sock.close()


def test_a_client_sending_a_body_over_the_limit_reads_the_413(server, ingest_key):
    """A refused body of ordinary size is discarded, not cut off: a reset mid-upload would read as a network
    error, which clients retry forever."""
    with httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {ingest_key}"}) as http:
        response = http.post(
            "/v1/events",
            content=b" " * (server.settings.max_body_bytes + 1),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert http.get("/healthz").status_code == 200  # the same connection serves on


def test_keyless_chunked_segment_body_is_cut_off_at_the_keyless_limit(server):
    sock = connect(server.port)
    sock.sendall(head("POST", "/v1/batch", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
    chunk = b"%x\r\n" % (64 * 1024) + b" " * (64 * 1024) + b"\r\n"
    sent = send_until_refused(sock, 5 * MIB, chunk)
    assert sent < 5 * MIB
    assert read_response(sock, timeout=5).status == 413


async def test_operator_body_over_the_api_limit_is_413(server, dsn):
    key = await create_key(dsn, "operator")
    body = b'{"matchers": ["a=b"], "ends_at": "2099-01-01T00:00:00Z", "reason": "' + b"x" * 100 * 1024 + b'"}'
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.post(
            "/v1/silences", content=body, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        )
    assert response.status_code == 413
    assert "65536" in response.json()["error"]["message"]


async def test_a_campaign_may_be_larger_than_other_operator_bodies(server, dsn):
    """PUT /v1/campaigns keeps its own 1 MiB limit (many SKUs): 100 KiB is read and judged by the campaign parser."""
    key = await create_key(dsn, "operator")
    body = b"id: c-1\nname: big\n# " + b"x" * 100 * 1024 + b"\n"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.put(
            "/v1/campaigns/c-1",
            content=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/yaml"},
        )
    assert response.status_code == 422, response.text


async def test_a_body_that_arrives_too_slowly_is_408(dsn):
    key = await create_key(dsn, "ingest")
    server = start_server(dsn, WARROOM_BODY_TIMEOUT_S=1)
    try:
        sock = connect(server.port)
        sock.sendall(
            head(
                "POST",
                "/v1/events",
                {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Content-Length": "100"},
            )
            + b'{"event_id"'
        )
        started = time.monotonic()
        response = read_response(sock, timeout=5)
        assert response.status == 408, response.body
        assert time.monotonic() - started < 3
        assert closed_by_peer(sock, within_s=2)
    finally:
        server.stop()


async def test_bodies_in_flight_are_bounded_and_keyless_ones_take_a_share(dsn):
    key = await create_key(dsn, "ingest")
    slots = 4
    server = start_server(dsn, WARROOM_MAX_BODIES_IN_FLIGHT=slots)
    keyed = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Content-Length": "1000"}
    keyless = {"Content-Type": "application/json", "Content-Length": "1000"}
    try:
        held = []
        for _ in range(slots // KEYLESS_SHARE):  # the keyless share is full …
            held.append(connect(server.port))
            held[-1].sendall(head("POST", "/v1/batch", keyless) + b"{")
        await asyncio.sleep(0.3)
        extra = connect(server.port)
        extra.sendall(head("POST", "/v1/batch", keyless) + b"{")
        response = read_response(extra, timeout=5)
        assert response.status == 503 and response.headers["retry-after"] == "1"
        async with httpx.AsyncClient(
            base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {key}"}
        ) as http:
            assert (await http.post("/v1/events", json=event("f-1", "visit"))).status_code == 202  # … keyed ones pass
            while len(held) < slots:  # every slot is taken
                held.append(connect(server.port))
                held[-1].sendall(head("POST", "/v1/events", keyed) + b"{")
            await asyncio.sleep(0.3)
            refused = await http.post("/v1/events", json=event("f-2", "visit"))
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            for sock in held:
                sock.close()
            await asyncio.sleep(0.3)
            assert (await http.post("/v1/events", json=event("f-3", "visit"))).status_code == 202
    finally:
        server.stop()


async def test_a_key_checked_before_the_body_is_counted_once_against_its_rate_limit(server, dsn):
    key = await create_key(dsn, "ingest", rate_limit=1)  # a burst of 2 requests
    async with httpx.AsyncClient(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {key}"}) as http:
        statuses = [(await http.post("/v1/events", json=event(f"r-{i}", "visit"))).status_code for i in range(3)]
    assert statuses == [202, 202, 429]


def test_options_and_bodiless_requests_pass_untouched(server):
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/healthz").status_code == 200
        assert http.delete("/v1/silences/s-1").status_code == 401
        assert http.options("/v1/events").status_code != 401
