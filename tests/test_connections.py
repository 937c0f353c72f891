"""Connections cannot be held forever: header timeout, keep-alive timeout, header size and a connection limit,
over real sockets, against the same uvicorn configuration ``warroom serve`` runs (and ``warroom serve`` itself)."""

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port, start_server
from tests.rawhttp import closed_by_peer, connect, read_response

ROOT = Path(__file__).resolve().parent.parent


def test_idle_connections_are_closed_after_the_header_timeout(dsn):
    server = start_server(dsn, WARROOM_HEADER_TIMEOUT_S=1)
    try:
        socks = [connect(server.port) for _ in range(200)]
        assert all(closed_by_peer(sock, within_s=2.5) for sock in socks)
        with httpx.Client(base_url=server.url, timeout=5) as http:
            assert http.get("/healthz").status_code == 200
    finally:
        server.stop()


def test_slowloris_headers_are_cut_off_though_bytes_keep_coming(dsn):
    """100 clients each sending their headers one byte every 0.1 s are all disconnected by the header timeout."""
    server = start_server(dsn, WARROOM_HEADER_TIMEOUT_S=1)
    try:
        socks = [connect(server.port) for _ in range(100)]
        started = time.monotonic()
        open_socks, header = list(socks), b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
        for byte in header:
            for sock in list(open_socks):
                try:
                    sock.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    open_socks.remove(sock)
            open_socks = [sock for sock in open_socks if not closed_by_peer(sock, within_s=0.001)]
            if not open_socks:
                break
            time.sleep(0.1)
        assert not open_socks, f"{len(open_socks)} slowloris connections still open"
        assert time.monotonic() - started < 3
        with httpx.Client(base_url=server.url, timeout=5) as http:
            assert http.get("/healthz").status_code == 200
    finally:
        server.stop()


def test_a_slow_second_request_on_a_kept_alive_connection_is_cut_off_too(dsn):
    server = start_server(dsn, WARROOM_HEADER_TIMEOUT_S=1, WARROOM_KEEP_ALIVE_S=30)
    try:
        sock = connect(server.port)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).status == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # then nothing more
        assert closed_by_peer(sock, within_s=2.5)
    finally:
        server.stop()


def test_idle_keep_alive_connections_close_after_the_keep_alive_timeout(dsn):
    server = start_server(dsn, WARROOM_KEEP_ALIVE_S=0.5)
    try:
        sock = connect(server.port)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).status == 200
        assert closed_by_peer(sock, within_s=2)
    finally:
        server.stop()


def test_headers_over_the_limit_are_431(server):
    sock = connect(server.port)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    try:
        for _ in range(20):
            sock.sendall(b"X-Pad: " + b"a" * 8000 + b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    response = read_response(sock)
    assert response.status == 431 and response.headers["x-content-type-options"] == "nosniff"
    assert "headers" in response.json()["error"]["message"]


def test_at_the_connection_limit_the_longest_idle_connection_makes_room(dsn):
    server = start_server(dsn, WARROOM_MAX_CONNECTIONS=50, WARROOM_HEADER_TIMEOUT_S=60)
    try:
        socks = [connect(server.port) for _ in range(120)]
        time.sleep(0.5)
        with httpx.Client(base_url=server.url, timeout=5) as http:
            assert http.get("/healthz").status_code == 200
        still_open = [sock for sock in socks if not closed_by_peer(sock, within_s=0.05)]
        assert len(still_open) <= 50
        assert socks[-1] in still_open and socks[0] not in still_open, "the oldest idle connections go first"
    finally:
        server.stop()


def _limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def test_warroom_serve_with_1024_descriptors_serves_through_1100_idle_sockets(dsn):
    """The report's case: 1,100 idle sockets under a 1,024-descriptor limit made requests fail with an empty reply."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "WARROOM_LOG_LEVEL": "warning",
        "WARROOM_CAMPAIGNS_DIR": "/nonexistent",
        "WARROOM_RULES_DIR": "/nonexistent",
        "WARROOM_NOTIFY_FILE": "/nonexistent",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        preexec_fn=_limit_descriptors,
    )
    socks = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "server did not start"
            time.sleep(0.2)
        for _ in range(1100):
            socks.append(connect(port))
        time.sleep(1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            for _ in range(5):
                assert http.get("/healthz").status_code == 200
    finally:
        for sock in socks:
            sock.close()
        process.terminate()
        process.wait(30)
