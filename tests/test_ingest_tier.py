"""The ingest tier: ingest-role processes beside the full server, on a real PostgreSQL.

What is posted to an ingest process reaches the full server's metrics; the
same events posted to two ingest processes are stored once; SIGTERM to the
full server drains its ingest processes' accepted requests (a 2xx means committed).
"""

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.api.services import FullServices, IngestServices
from app.core.settings import Settings, SettingsError
from tests.conftest import event, free_port, start_server, wait_until
from tests.helpers import define

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT_S = 60.0


async def test_event_posted_to_an_ingest_process_reaches_the_full_servers_metrics(dsn, ingest_key, db):
    await define(db, "tier")
    full = start_server(dsn)
    ingest = start_server(dsn, WARROOM_ROLE="ingest")
    try:
        assert type(ingest.services) is IngestServices, "no metrics engine, no alerts: those are the full server's"
        assert isinstance(full.services, FullServices)
        headers = {"Authorization": f"Bearer {ingest_key}"}
        async with httpx.AsyncClient(base_url=ingest.url, headers=headers, timeout=30) as http:
            batch = [event("r-1", "order_paid", amount=120, campaign="tier"), event("r-2", "visit", campaign="tier")]
            response = await http.post("/v1/events", json={"events": batch})
            assert response.status_code == 202 and response.json()["accepted"] == 2
            assert (await http.get("/v1/campaigns/tier/snapshot")).status_code == 404  # not served by this role
            assert "/v1/events" in (await http.get("/openapi.json")).json()["paths"]

        async def counted() -> bool:
            state = full.services.metrics.engine.states.get("tier")
            return state is not None and state.events == 2

        await wait_until(counted)
        assert full.services.metrics.engine.last_seq == await db.fetchval("SELECT max(seq) FROM events")
    finally:
        ingest.stop()
        full.stop()


async def test_the_same_events_posted_to_two_ingest_processes_are_stored_once(dsn, ingest_key, db):
    tiers = [start_server(dsn, WARROOM_ROLE="ingest") for _ in range(2)]
    ids = [f"d-{i}" for i in range(400)]
    try:
        headers = {"X-API-Key": ingest_key}
        async with httpx.AsyncClient(headers=headers, timeout=30) as http:

            async def post(url: str, chunk: list[str]) -> tuple[int, int]:
                response = await http.post(f"{url}/v1/events", json={"events": [event(i, "visit") for i in chunk]})
                assert response.status_code == 202
                body = response.json()
                return body["accepted"], body["duplicates"]

            chunks = [ids[start : start + 150] for start in range(0, len(ids), 50)]
            results = await asyncio.gather(*(post(tier.url, chunk) for chunk in chunks for tier in tiers))
    finally:
        for tier in tiers:
            tier.stop()
    posted = sum(len(chunk) for chunk in chunks) * len(tiers)
    assert sum(accepted for accepted, _ in results) == len(ids)
    assert sum(accepted + duplicates for accepted, duplicates in results) == posted
    assert await db.fetchval("SELECT count(*) FROM events") == len(ids)
    seqs = await db.fetchval("SELECT array_agg(seq ORDER BY seq) FROM events")
    assert len(set(seqs)) == len(ids)


def test_ingest_port_must_differ_from_the_main_port():
    with pytest.raises(SettingsError, match="WARROOM_INGEST_PORT=8000: must differ from WARROOM_PORT"):
        Settings.from_env({"WARROOM_INGEST_PROCESSES": "2", "WARROOM_INGEST_PORT": "8000"})
    assert Settings.from_env({"WARROOM_INGEST_PROCESSES": "2"}).ingest_port == 8001


async def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            try:
                if (await http.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            await asyncio.sleep(0.1)


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


async def test_serve_starts_ingest_processes_and_sigterm_drains_them(dsn, ingest_key, db):
    port, ingest_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "WARROOM_LOG_LEVEL": "warning",
        "WARROOM_RATE_LIMIT_PER_S": "0",
        "WARROOM_INGEST_PROCESSES": "2",
        "WARROOM_INGEST_PORT": str(ingest_port),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", "--port", str(port), cwd=ROOT, env=env
    )
    blocker = await asyncpg.connect(dsn)
    try:
        await _wait_ready(f"http://127.0.0.1:{port}")  # ready only once its ingest processes are
        children = _children(process.pid)
        assert len(children) == 2
        headers = {"X-API-Key": ingest_key}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ingest_port}", headers=headers, timeout=30) as http:
            assert (await http.post("/v1/events", json=event("s-0", "visit"))).status_code == 202

            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            in_flight = [
                asyncio.create_task(http.post("/v1/events", json={"events": [event(f"s-{n}-{i}") for i in range(50)]}))
                for n in range(4)
            ]
            await asyncio.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(1.0)
            assert not any(task.done() for task in in_flight), "the requests should still be waiting for their commit"
            await transaction.rollback()

            responses = await asyncio.gather(*in_flight)
            assert all(r.status_code == 202 and r.json()["accepted"] == 50 for r in responses)
        assert await asyncio.wait_for(process.wait(), 30) in (0, -signal.SIGTERM)
        assert not any(_running(pid) for pid in children), "ingest processes outlived the server"
    finally:
        await blocker.close()
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert await db.fetchval("SELECT count(*) FROM events") == 1 + 4 * 50


async def test_an_ingest_process_on_its_own_drains_on_sigterm(dsn, ingest_key, db):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": dsn, "WARROOM_LOG_LEVEL": "warning", "WARROOM_ROLE": "ingest"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", "--port", str(port), cwd=ROOT, env=env
    )
    blocker = await asyncpg.connect(dsn)
    try:
        url = f"http://127.0.0.1:{port}"
        await _wait_ready(url)
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": ingest_key}, timeout=30) as http:
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            in_flight = asyncio.create_task(
                http.post("/v1/events", json={"events": [event(f"o-{i}") for i in range(30)]})
            )
            await asyncio.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(1.0)
            assert not in_flight.done()
            await transaction.rollback()
            response = await in_flight
            assert response.status_code == 202 and response.json()["accepted"] == 30
        assert await asyncio.wait_for(process.wait(), 30) in (0, -signal.SIGTERM)
    finally:
        await blocker.close()
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert await db.fetchval("SELECT count(*) FROM events") == 30


async def test_ingest_processes_stop_when_the_server_is_killed(dsn):
    port, ingest_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "WARROOM_LOG_LEVEL": "warning",
        "WARROOM_INGEST_PROCESSES": "1",
        "WARROOM_INGEST_PORT": str(ingest_port),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", "--port", str(port), cwd=ROOT, env=env
    )
    try:
        await _wait_ready(f"http://127.0.0.1:{port}")
        children = _children(process.pid)
        assert len(children) == 1
        process.kill()  # no chance to forward anything
        await asyncio.wait_for(process.wait(), 10)
        deadline = time.monotonic() + 30
        while _running(children[0]) and "Z" not in _state(children[0]):
            assert time.monotonic() < deadline, "the ingest process outlived its killed server"
            await asyncio.sleep(0.1)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _running(pid: int) -> bool:
    """Whether the process (or its zombie) is still in the process table: one procfs lookup, which does not block."""
    return os.path.exists(f"/proc/{pid}")


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat[stat.rindex(")") + 2 :].split()[0]
