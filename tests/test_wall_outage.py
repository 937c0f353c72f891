"""The wall during a database outage: a kiosk that must be given a new session is asked to retry (503 with
Retry-After, on the wall's own refusal page), never answered a bare "Internal Server Error"."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import create_key, start_server
from tests.helpers import stop_postgres


async def test_a_kiosk_url_and_a_legacy_cookie_get_a_retry_page_while_the_database_is_down(pg):
    screen = await create_key(pg.dsn(), "screen")
    server = start_server(pg.dsn())
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            assert (await http.get(f"/wall/x?token={screen}")).status_code in (200, 404)  # the key is now cached
            await asyncio.to_thread(stop_postgres, pg)
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as kiosk:
                down = await kiosk.get(f"/wall/x?token={screen}")
                legacy = await kiosk.get("/wall/x", headers={"Cookie": f"warroom_wall={screen}"})
            for response in (down, legacy):
                assert response.status_code == 503, response.text
                assert int(response.headers["Retry-After"]) >= 1
                assert "database unavailable" in response.text
    finally:
        server.stop()
        await asyncio.to_thread(pg._server.ensure_postgres_running)
