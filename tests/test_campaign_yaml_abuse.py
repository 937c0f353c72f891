"""PUT /v1/campaigns with hostile YAML: refused quickly, and the server keeps serving meanwhile."""

import asyncio
import time

import httpx

from tests.conftest import create_key
from tests.helpers import ALIAS_BOMB


async def test_alias_bomb_is_422_fast_and_health_answers_meanwhile(server, dsn):
    key = await create_key(dsn, "operator")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        started = time.monotonic()
        bombs = [
            http.put(
                "/v1/campaigns/c-1",
                content=ALIAS_BOMB.replace("\ne:", f"\nf{i}: 1\ne:"),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/yaml"},
            )
            for i in range(4)
        ]
        health, *answers = await asyncio.gather(http.get("/healthz"), *bombs)
        elapsed = time.monotonic() - started
    assert health.status_code == 200
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert "body:3:8" in answer.json()["error"]["message"] and "alias" in answer.json()["error"]["message"]
    assert elapsed < 2, f"four 283-byte bodies took {elapsed:.1f} s"
