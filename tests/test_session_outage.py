"""Signing out while the database is away: the browser's cookie is cleared all the same, and the session is
refused at once by the process that answered, even though its row could not be deleted yet."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import create_key, start_server
from tests.helpers import stop_postgres

CSRF = {"X-Warroom-Request": "test"}


async def test_sign_out_during_an_outage_clears_the_cookie_and_says_the_row_remains(pg):
    operator = await create_key(pg.dsn(), "operator")
    server = start_server(pg.dsn())
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            assert (await http.post("/v1/sessions", json={"key": operator})).status_code == 201
            copy = {"Cookie": f"warroom_session={http.cookies['warroom_session']}"}
            assert (await http.get("/v1/sessions/current")).json()["signed_in"] is True  # cached as live
            await asyncio.to_thread(stop_postgres, pg)
            out = await http.delete("/v1/sessions/current", headers=CSRF)
            assert out.status_code == 503 and int(out.headers["Retry-After"]) >= 1, out.text
            assert "warroom_session=;" in out.headers["Set-Cookie"] and "Max-Age=0" in out.headers["Set-Cookie"]
            assert "could not be deleted" in out.json()["error"]["message"]
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as other:
                assert (await other.get("/v1/sessions/current", headers=copy)).json()["signed_in"] is False
    finally:
        server.stop()
        await asyncio.to_thread(pg._server.ensure_postgres_running)
