"""Trust under stress: concurrent retries, a database outage, overload, and SIGTERM during ingest."""

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import httpx
import pytest

from app.campaigns import model as campaigns
from app.core.database import create_pool
from app.ingest.group_commit import GroupCommitter, prepare_connection
from tests.conftest import create_key, event, free_port, scrape_metrics, start_server, wait_until
from tests.helpers import definition, stop_postgres

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


async def test_concurrent_retries_store_each_event_once(client, db):
    ids = [f"h-{i}" for i in range(300)]

    async def retrying_client(offset: int) -> int:
        accepted = 0
        for round_ in range(3):
            chunk = _chunk(ids, offset, round_)
            response = await client.post("/v1/events", json={"events": [event(i, "visit") for i in chunk]})
            assert response.status_code == 202
            body = response.json()
            assert body["accepted"] + body["duplicates"] == len(chunk)
            accepted += body["accepted"]
        return accepted

    accepted = await asyncio.gather(*(retrying_client(n) for n in range(24)))
    stored = await db.fetchval("SELECT count(*) FROM events")
    distinct = await db.fetchval("SELECT count(DISTINCT event_id) FROM events")
    assert stored == distinct == sum(accepted)
    assert stored == len({i for n in range(24) for r in range(3) for i in _chunk(ids, n, r)})


async def test_a_commit_that_deadlocks_with_another_writer_is_written_again_not_rejected(client, db, dsn):
    """Two writers taking the same event ids in opposite orders deadlock; PostgreSQL aborts one. That is
    a clash, not bad data: the server writes its group again (here the other writer's rows are then
    there, so both events are duplicates) instead of answering 422."""
    other = await asyncpg.connect(dsn)
    try:
        transaction = other.transaction()
        await transaction.start()
        await other.execute(
            "INSERT INTO events (event_id, type, occurred_at, campaign) VALUES ('dl-x', 'visit', now(), 'c')"
        )
        posted = asyncio.create_task(
            client.post("/v1/events", json={"events": [event("dl-y", "visit"), event("dl-x", "visit")]})
        )
        await wait_until(
            lambda: db.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'"),
            timeout=10,
        )  # the server holds dl-y and waits for dl-x
        await other.execute(
            "INSERT INTO events (event_id, type, occurred_at, campaign) VALUES ('dl-y', 'visit', now(), 'c')"
        )
        await transaction.commit()  # reached once PostgreSQL aborted the server's transaction as the deadlock's victim
        response = await posted
    finally:
        await other.close()
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 0, "duplicates": 2, "rejected": []}
    assert await db.fetchval("SELECT count(*) FROM events") == 2


def _chunk(ids: list[str], offset: int, round_: int) -> list[str]:
    """An overlapping window of ids, different per client and round."""
    start = (offset * 37 + round_ * 11) % len(ids)
    return (ids[start:] + ids[:start])[:120]


async def test_database_outage_answers_503_and_recovers_without_restart(pg):
    dsn = pg.dsn()
    key, unseen_key = await create_key(dsn), await create_key(dsn)
    server = start_server(dsn, WARROOM_KEY_CACHE_S=0.2)
    try:
        async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}, timeout=30) as http:
            assert (await http.post("/v1/events", json=event("o-1"))).status_code == 202
            await asyncio.to_thread(stop_postgres, pg)
            await asyncio.sleep(
                0.5
            )  # past the key cache: a key seen before is trusted as cached while the database is away

            down = await http.post("/v1/events", json=event("o-2"))
            assert down.status_code == 503 and "not stored" in down.json()["error"]["message"]
            assert int(down.headers["Retry-After"]) >= 1
            unchecked = await http.post("/v1/events", json=event("o-3"), headers={"X-API-Key": unseen_key})
            assert unchecked.status_code == 503, "a key never seen cannot be checked: neither 401 nor 500"
            assert (
                "cannot be checked" in unchecked.json()["error"]["message"] and unchecked.headers["Retry-After"] == "1"
            )
            assert (await http.get("/readyz")).status_code == 503

            await asyncio.to_thread(pg._server.ensure_postgres_running)
            deadline = time.monotonic() + 15
            while (response := await http.post("/v1/events", json=event("o-2"))).status_code != 202:
                assert response.status_code == 503
                assert time.monotonic() < deadline, "ingest did not resume"
                await asyncio.sleep(0.2)

            async def ready() -> bool:  # the loops that failed meanwhile are ready once they progress again
                return (await http.get("/readyz")).status_code == 200

            await wait_until(ready, timeout=15)
    finally:
        server.stop()
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT array_agg(event_id ORDER BY event_id) FROM events") == ["o-1", "o-2"]
    finally:
        await conn.close()


async def test_full_queue_refuses_and_slow_commit_times_out(dsn, ingest_key, db):
    server = start_server(dsn, WARROOM_INGEST_QUEUE_EVENTS=10, WARROOM_INGEST_WRITERS=1, WARROOM_COMMIT_TIMEOUT_S=1)
    blocker = await asyncpg.connect(dsn)
    try:
        async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": ingest_key}, timeout=30) as http:
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")

            stuck = asyncio.create_task(http.post("/v1/events", json={"events": [event(f"q-{i}") for i in range(8)]}))
            await asyncio.sleep(0.3)
            full = await http.post("/v1/events", json={"events": [event(f"q-{i}") for i in range(8, 12)]})
            assert full.status_code == 503 and "queue is full" in full.json()["error"]["message"]
            assert full.headers["Retry-After"] == "1"

            timed_out = await stuck
            assert timed_out.status_code == 503 and "retry" in timed_out.json()["error"]["message"]
            await transaction.rollback()
            await wait_until(lambda: _stored(db, 8))
            await wait_until(lambda: _queue_drained(server))

            retry = await http.post("/v1/events", json={"events": [event(f"q-{i}") for i in range(8)]})
            assert retry.status_code == 202
            assert retry.json() == {"accepted": 0, "duplicates": 8, "rejected": []}
    finally:
        await blocker.close()
        server.stop()
    assert await db.fetchval("SELECT count(*) FROM events") == 8


async def _queue_drained(server) -> bool:
    # Rows are visible to other sessions a moment before the writer gives their queue room back.
    return server.services.committer.queued_events == 0


async def _stored(db: asyncpg.Connection, expected: int) -> bool:
    return await db.fetchval("SELECT count(*) FROM events") == expected


async def test_sigterm_drains_in_flight_batches(dsn, ingest_key, db):
    """SIGTERM: the server stops taking work, commits what it accepted, then exits; its logs are JSON lines."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "WARROOM_LOG_LEVEL": "info",
        "WARROOM_LOG_FORMAT": "json",
        "WARROOM_RATE_LIMIT_PER_S": "0",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", "--port", str(port), cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    blocker = await asyncpg.connect(dsn)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": ingest_key}, timeout=30
        ) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server did not start"
                await asyncio.sleep(0.1)

            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            in_flight = asyncio.create_task(
                http.post("/v1/events", json={"events": [event(f"t-{i}") for i in range(50)]})
            )
            await asyncio.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(1.0)
            assert not in_flight.done(), "the request should still be waiting for its commit"
            await transaction.rollback()

            response = await in_flight
            assert response.status_code == 202 and response.json()["accepted"] == 50
        # uvicorn re-raises the captured SIGTERM after its graceful shutdown, as a service manager expects
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode in (0, -signal.SIGTERM)
        logged = [json.loads(line) for line in stderr.decode().splitlines() if line.strip()]
    finally:
        await blocker.close()
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert await db.fetchval("SELECT count(*) FROM events") == 50
    assert all({"ts", "level", "logger", "msg"} <= set(entry) for entry in logged), logged
    assert any(entry["msg"] == "ready" and entry["level"] == "info" for entry in logged)


def _row(event_id: str, occurred_at: datetime) -> tuple:
    return (
        event_id,
        "visit",
        occurred_at,
        "c",
        None,
        None,
        "a-1",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize("size", [2, 150], ids=["array insert", "copy"])
async def test_a_submission_the_driver_cannot_send_is_refused_alone_and_the_writer_lives_on(dsn, db, size):
    """Validation stops such values at the door; if one slips through, it must not take its group (or the
    writer) down: the array path once raised DataError, read as 'database unavailable' for everyone, and
    the COPY path a bare OverflowError that killed the writer task."""
    pool = await create_pool(dsn, init=prepare_connection)
    committer = GroupCommitter(
        pool, writers=1, group_events=10_000, queue_events=100_000, commit_timeout_s=10, drain_timeout_s=5
    )
    now = datetime.now(UTC)
    unsendable = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))  # cannot be converted to UTC
    try:
        good = asyncio.create_task(committer.submit([_row(f"good-{i}", now) for i in range(size)]))
        bad = asyncio.create_task(committer.submit([_row(f"bad-{i}", now if i else unsendable) for i in range(size)]))
        await asyncio.sleep(0.05)
        committer.start()  # both submissions wait in the queue: the writer takes them as one group
        assert (await good).accepted == size
        refused = await bad
        assert refused.accepted == size - 1 and [index for index, _ in refused.refused] == [0], "only that event"
        later = await committer.submit([_row(f"later-{i}", now) for i in range(size)])
        assert later.accepted == size, "the writer is still there"
    finally:
        await committer.drain_and_stop()
        await pool.close()
    assert await db.fetchval("SELECT count(*) FROM events WHERE event_id LIKE 'bad-%'") == size - 1


OUTAGE_CYCLES = 20
"""The issue's bar: an outage repeated twenty times under load, not once."""
OUTAGE_DOWN_S = 0.5
OUTAGE_POSTERS = 4
OUTAGE_BATCH = 50
OUTAGE_CAMPAIGN = "outage"
OUTAGE_RECOVERY_S = 30.0
OUTAGE_TOTALS = {"visit": "visits", "add_to_cart": "add_to_cart", "order_paid": "orders_paid"}


async def test_repeated_database_outages_under_load_keep_every_event_and_the_live_metrics(pg):
    """PostgreSQL stops and starts twenty times while clients post, every other time killed as in a
    crash (``pg_ctl -m immediate``: connections cut, recovery from the WAL at restart). Each time: no valid event is
    answered 422 (or 500), every event acknowledged with a 2xx is stored, and once the database is
    back the live snapshot equals a GROUP BY over the stored events and /readyz is 200 again: the
    tail (which used to die on asyncpg's "cannot switch to state" error, freezing the wall) and every
    other loop recover by themselves."""
    dsn = pg.dsn()
    key = await create_key(dsn)
    server = start_server(dsn, WARROOM_KEY_CACHE_S=3600, WARROOM_RATE_LIMIT_PER_S=0)
    acknowledged: list[str] = []
    try:
        await _define(server.url, dsn, OUTAGE_CAMPAIGN)
        async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}, timeout=30) as http:
            for cycle in range(OUTAGE_CYCLES):
                statuses: Counter[int] = Counter()
                before = len(acknowledged)
                posting = asyncio.Event()
                posting.set()
                posters = [
                    asyncio.create_task(_post_while(http, posting, f"c{cycle}-p{p}", statuses, acknowledged))
                    for p in range(OUTAGE_POSTERS)
                ]
                await asyncio.sleep(0.2)
                await asyncio.to_thread(stop_postgres, pg, "immediate" if cycle % 2 else "fast")
                await asyncio.sleep(OUTAGE_DOWN_S)
                await asyncio.to_thread(pg._server.ensure_postgres_running)
                await asyncio.sleep(0.3)
                posting.clear()
                await asyncio.gather(*posters)
                assert set(statuses) <= {202, 503}, f"cycle {cycle}: {statuses}"
                assert statuses[503] and len(acknowledged) - before >= OUTAGE_POSTERS * OUTAGE_BATCH, "under load"
                await _assert_recovered(server, http, dsn, acknowledged, cycle)
    finally:
        server.stop()


async def _define(server_url: str, dsn: str, campaign_id: str) -> None:
    """Define the campaign as an operator does: the engine counts only defined campaigns (the others are
    counted per name, so their snapshot would read zero)."""
    operator = await create_key(dsn, "operator")
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as http:
        response = await http.put(
            f"/v1/campaigns/{campaign_id}",
            content=campaigns.to_json(definition(campaign_id)),
            headers={"X-API-Key": operator, "Content-Type": "application/json"},
        )
    assert response.status_code == 201, response.text


async def _post_while(
    http: httpx.AsyncClient, posting: asyncio.Event, prefix: str, statuses: Counter, acknowledged: list[str]
) -> None:
    """Post new batches while ``posting`` is set, each retried (as the README tells clients) until a 2xx."""
    batch = 0
    while posting.is_set():
        ids = [f"{prefix}-b{batch}-{i}" for i in range(OUTAGE_BATCH)]
        types = list(OUTAGE_TOTALS)
        events = [event(i, types[n % len(types)], campaign=OUTAGE_CAMPAIGN) for n, i in enumerate(ids)]
        while True:
            response = await http.post("/v1/events", json={"events": events})
            statuses[response.status_code] += 1
            if response.status_code != 503:
                break
            assert "Retry-After" in response.headers
            await asyncio.sleep(0.1)  # shorter than Retry-After, to keep the test short
        if response.status_code == 202:
            body = response.json()
            assert body["accepted"] + body["duplicates"] == len(ids) and not body["rejected"], body
            acknowledged.extend(ids)
        batch += 1


async def _assert_recovered(server, http: httpx.AsyncClient, dsn: str, acknowledged: list[str], cycle: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM events WHERE event_id = ANY($1)", acknowledged)
        assert stored == len(acknowledged), f"cycle {cycle}: acknowledged events missing"
        engine = server.services.metrics.engine
        deadline = time.monotonic() + OUTAGE_RECOVERY_S
        while engine.last_seq != await conn.fetchval("SELECT max(seq) FROM events"):
            assert time.monotonic() < deadline, f"cycle {cycle}: the metrics tail stopped at seq {engine.last_seq}"
            await asyncio.sleep(0.05)
        counts = dict(
            await conn.fetch("SELECT type, count(*) FROM events WHERE campaign = $1 GROUP BY type", OUTAGE_CAMPAIGN)
        )
        totals = engine.snapshot(OUTAGE_CAMPAIGN, time.time()).totals
        assert {t: getattr(totals, name) for t, name in OUTAGE_TOTALS.items()} == {
            t: counts.get(t, 0) for t in OUTAGE_TOTALS
        }, cycle
        while (ready := await http.get("/readyz")).status_code != 200:
            assert ready.status_code == 503 and "Retry-After" in ready.headers
            assert time.monotonic() < deadline, f"cycle {cycle}: not ready again: {ready.json()}"
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def test_endpoints_answer_503_with_retry_after_while_the_database_is_down(pg):
    """Not plain-text 500s: any endpoint whose database call fails for an outage answers the JSON error
    with 503 and Retry-After, and works again once the database is back, as does /readyz."""
    dsn = pg.dsn()
    operator = await create_key(dsn, "operator")
    server = start_server(dsn, WARROOM_KEY_CACHE_S=3600)
    campaign = (
        "id: out\nname: Out\nphases:\n  preheat: {start: 2026-11-10T00:00:00+08:00, end: 2026-11-11T00:00:00+08:00}\n"
        "  burst: {start: 2026-11-11T00:00:00+08:00, end: 2026-11-12T00:00:00+08:00}\n"
        "  wrapup: {start: 2026-11-12T00:00:00+08:00, end: 2026-11-13T00:00:00+08:00}\n"
    )
    ends_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    requests = [
        ("GET", "/v1/alerts/history", {}),
        ("GET", "/v1/notifications", {}),
        ("PUT", "/v1/campaigns/out", {"content": campaign, "headers": {"Content-Type": "application/yaml"}}),
        ("POST", "/v1/silences", {"json": {"matchers": ["sku=SKU-1"], "ends_at": ends_at, "reason": "outage test"}}),
    ]
    try:
        async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": operator}, timeout=30) as http:
            assert (await http.get("/v1/alerts/history")).status_code == 200  # the key is cached from here on
            await asyncio.to_thread(stop_postgres, pg)
            for method, path, options in requests:
                response = await http.request(method, path, **options)
                assert response.status_code == 503, (method, path, response.status_code, response.text)
                assert response.json()["error"]["code"] == "unavailable", (method, path)
                assert int(response.headers["Retry-After"]) >= 1, (method, path)
            ready = await http.get("/readyz")
            assert ready.status_code == 503 and int(ready.headers["Retry-After"]) >= 1
            assert ready.json()["checks"]["database"].startswith("unreachable")

            await asyncio.to_thread(pg._server.ensure_postgres_running)
            deadline = time.monotonic() + 20
            for method, path, options in requests:
                while (response := await http.request(method, path, **options)).status_code == 503:
                    assert time.monotonic() < deadline, (method, path, response.text)
                    await asyncio.sleep(0.2)
                assert response.status_code in (200, 201), (method, path, response.text)
    finally:
        server.stop()


async def test_the_tail_survives_any_exception_and_readyz_says_so_meanwhile(dsn, ingest_key, db, monkeypatch):
    """The tail used to die for good on an exception it did not expect (asyncpg's InternalClientError):
    the wall froze while /readyz said 200. Now any exception restarts it; while it is down /readyz is
    503 and names it, and afterwards every event is counted."""
    server = start_server(dsn)
    metrics = server.services.metrics
    apply = metrics.engine.apply
    failures = [RuntimeError("unexpected"), KeyError("also unexpected")]

    def failing_apply(events):
        if failures:
            raise failures.pop(0)
        return apply(events)

    try:
        await _define(server.url, dsn, "c1")
        async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": ingest_key}, timeout=30) as http:
            await wait_until(lambda: _ready(http))
            monkeypatch.setattr(metrics.engine, "apply", failing_apply)
            assert (await http.post("/v1/events", json=event("tail-1", campaign="c1"))).status_code == 202
            await wait_until(lambda: _not_ready_for(http, "metrics-tail dead"), timeout=5, interval=0.02)
            await wait_until(lambda: _ready(http), timeout=15)
            assert metrics.engine.last_seq == await db.fetchval("SELECT max(seq) FROM events")
            assert metrics.engine.snapshot("c1", time.time()).totals.orders_paid == 1
            assert server.services.supervisor.loops["metrics-tail"].restarts == 2
            metrics_text = await scrape_metrics(http, dsn)
            assert 'warroom_loop_up{loop="metrics-tail"} 1.0' in metrics_text
            assert 'warroom_loop_restarts_total{loop="metrics-tail"}' in metrics_text
    finally:
        server.stop()


async def test_a_tail_held_back_while_events_wait_is_stalled(dsn, ingest_key, db, monkeypatch):
    """A write that stays open keeps the tail's horizon below it; events committed after it then wait.
    The tail still runs but does not advance: after its stall time /readyz is 503 ("stalled"), and
    ready again once the write ends."""
    monkeypatch.setattr("app.metrics.live.TAIL_STALL_AFTER_S", 1.0)
    server = start_server(dsn)
    blocker = await asyncpg.connect(dsn)
    try:
        async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": ingest_key}, timeout=30) as http:
            assert (await http.post("/v1/events", json=event("before-open-write"))).status_code == 202
            await wait_until(lambda: _counted(server, 1))
            await wait_until(lambda: _ready(http))
            counted = 1
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("SELECT events_write_begin()")
            assert (await http.post("/v1/events", json=event("after-open-write"))).status_code == 202
            await wait_until(lambda: _not_ready_for(http, "metrics-tail stalled"), timeout=10)
            assert server.services.metrics.engine.last_seq == counted
            await transaction.rollback()
            await wait_until(lambda: _ready(http), timeout=10)
            assert server.services.metrics.engine.last_seq == await db.fetchval("SELECT max(seq) FROM events")
    finally:
        await blocker.close()
        server.stop()


async def _counted(server, seq: int) -> bool:
    return server.services.metrics.engine.last_seq == seq


async def _ready(http: httpx.AsyncClient) -> bool:
    return (await http.get("/readyz")).status_code == 200


async def _not_ready_for(http: httpx.AsyncClient, reason: str) -> bool:
    response = await http.get("/readyz")
    if response.status_code != 503:
        return False
    assert int(response.headers["Retry-After"]) >= 1
    return reason in response.json()["checks"]["loops"]
