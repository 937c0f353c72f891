"""A push websocket ends when its key is revoked or its session ends: it is checked again every key-cache period,
not only at the handshake."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import websockets

from app.access import keys
from tests.conftest import create_key, start_server

CACHE_S = 0.5
MARGIN_S = 3.0


async def _revoke(dsn: str, name: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await keys.revoke(conn, name)
    finally:
        await conn.close()


async def _closed_code(socket: websockets.ClientConnection, within_s: float) -> int:
    async with asyncio.timeout(within_s):
        while True:
            try:
                await socket.recv()
            except websockets.ConnectionClosed as closed:
                assert closed.rcvd is not None
                return closed.rcvd.code


async def test_revoking_the_key_closes_an_open_alert_stream_signed_in_by_session(dsn):
    operator = await create_key(dsn, "operator", name="stream-revoked")
    server = start_server(dsn, WARROOM_KEY_CACHE_S=CACHE_S)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            assert (await http.post("/v1/sessions", json={"key": operator})).status_code == 201
            cookie = f"warroom_session={http.cookies['warroom_session']}"
        url = f"ws://127.0.0.1:{server.port}/v1/alerts/stream"
        async with websockets.connect(url, origin=server.url, additional_headers={"Cookie": cookie}) as socket:
            assert '"snapshot"' in await socket.recv()
            await _revoke(dsn, "stream-revoked")
            revoked = time.monotonic()
            assert await _closed_code(socket, CACHE_S * 2 + MARGIN_S) == 4401
            assert time.monotonic() - revoked < CACHE_S * 2 + MARGIN_S
    finally:
        server.stop()


async def test_revoking_the_key_closes_an_open_alert_stream_opened_with_the_key(dsn):
    operator = await create_key(dsn, "operator", name="stream-key-revoked")
    server = start_server(dsn, WARROOM_KEY_CACHE_S=CACHE_S)
    try:
        url = f"ws://127.0.0.1:{server.port}/v1/alerts/stream"
        async with websockets.connect(url, additional_headers={"X-API-Key": operator}) as socket:
            assert '"snapshot"' in await socket.recv()
            await _revoke(dsn, "stream-key-revoked")
            assert await _closed_code(socket, CACHE_S * 2 + MARGIN_S) == 4401
    finally:
        server.stop()


async def test_revoking_the_key_closes_an_open_campaign_live_stream(dsn):
    screen = await create_key(dsn, "screen", name="live-revoked")
    server = start_server(dsn, WARROOM_KEY_CACHE_S=CACHE_S)
    try:
        url = f"ws://127.0.0.1:{server.port}/v1/campaigns/any/live?token={screen}"
        async with websockets.connect(url) as socket:
            await _revoke(dsn, "live-revoked")
            assert await _closed_code(socket, CACHE_S * 2 + MARGIN_S) == 4401
    finally:
        server.stop()


async def test_revoking_the_screen_key_closes_an_open_wall_websocket(dsn):
    screen = await create_key(dsn, "screen", name="wall-revoked")
    server = start_server(dsn, WARROOM_KEY_CACHE_S=CACHE_S)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await http.get(f"/wall/x?token={screen}")
            cookie = f"warroom_wall_session={http.cookies['warroom_wall_session']}"
        url = f"ws://127.0.0.1:{server.port}/wall/_dash-ws-callback"
        async with websockets.connect(url, origin=server.url, additional_headers={"Cookie": cookie}) as socket:
            await _revoke(dsn, "wall-revoked")
            assert await _closed_code(socket, CACHE_S * 2 + MARGIN_S) == 4401
    finally:
        server.stop()
