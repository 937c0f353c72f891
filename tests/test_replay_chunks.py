"""A campaign defined after its events is replayed in bounded chunks inside the supervised tail.

Each chunk is one query over a bounded range of ``seq`` (well under the pool's command timeout
whatever the table's size), the tail reports progress after each, reads new events between them,
and the pending cursors advance per chunk: a replay cut short by an error resumes where it stopped,
and every event is counted exactly once.
"""

from __future__ import annotations

import asyncio
import zlib

import asyncpg

from app.campaigns import store
from app.metrics import live
from app.metrics.engine import Engine
from app.metrics.live import TAIL_LOOP, LiveMetrics
from tests.conftest import wait_until
from tests.helpers import GROUPED_SQL, assert_totals, define, definition

SPAN = 1_000
STORED = 20_000
LATE = "late"
INSERT_SQL = (
    "INSERT INTO events (event_id, type, occurred_at, campaign, order_id, amount, user_id) "
    "SELECT $1 || g, 'order_paid', now() - interval '1 hour', "
    "CASE WHEN g % 7 = 0 THEN 'late' ELSE 'noise-' || (g % 5) END, 'o' || g, (g % 100) + 0.5, 'u' || (g % 50) "
    "FROM generate_series(1, $2) g"
)


async def assert_late_matches_sql(engine: Engine, db: asyncpg.Connection) -> None:
    rows = await db.fetch(GROUPED_SQL.format(key="", where=f"WHERE campaign = '{LATE}'"))
    assert rows and not engine.pending and LATE in engine.counted
    for row in rows:
        assert_totals(engine.states[LATE].dims[""].totals, row, (LATE, row["type"]))
    noise = await db.fetchval(f"SELECT count(*) FROM events WHERE campaign <> '{LATE}'")
    assert engine.undefined.report().events == noise, "the other campaigns' events counted once, as undefined"


async def test_a_replay_over_many_chunks_reports_progress_per_chunk_reads_new_events_and_counts_exactly(dsn, db):
    await db.execute(INSERT_SQL, "old-", STORED)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    metrics = LiveMetrics(pool, dsn, replay_span=SPAN)
    try:
        await metrics.catch_up()
        assert metrics.engine.last_seq == STORED and metrics.engine.states == {}
        await define(db, LATE)
        await metrics.reload_campaigns()
        assert metrics.engine.pending == {LATE: 0}

        calls = 0

        def progress() -> None:
            nonlocal calls
            calls += 1

        await db.execute(INSERT_SQL, "new-", 700)  # arrive while the replay runs: counted once, by the replay
        rounds = 0
        while metrics.engine.pending:
            await metrics.catch_up(progress)
            rounds += 1
            if rounds == 1 and metrics.engine.pending:
                await metrics.checkpoint()  # the cursor is saved: a restarted process resumes the replay
                state = await db.fetchval("SELECT state FROM metric_checkpoints")
                restored = Engine.load(zlib.decompress(state), [definition(LATE)])
                assert (
                    restored.pending == metrics.engine.pending and 0 < restored.pending[LATE] < metrics.engine.last_seq
                )
        assert calls >= (STORED + 700) // SPAN, f"progress after each chunk: {calls} calls"
        assert metrics.engine.last_seq == STORED + 700
        await assert_late_matches_sql(metrics.engine, db)
    finally:
        await pool.close()


async def test_a_replay_interrupted_midway_resumes_under_the_supervisor_and_never_stalls_the_tail(dsn, db, monkeypatch):
    monkeypatch.setattr(live, "TAIL_STALL_AFTER_S", 1.0)
    await db.execute(INSERT_SQL, "old-", STORED)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    metrics = LiveMetrics(pool, dsn, replay_span=SPAN)
    real_step = live.replay_step
    steps = 0

    async def slow_step_failing_once(*args, **kwargs) -> set[str]:
        nonlocal steps
        steps += 1
        if steps == 15:  # after the stall time: a replay without progress would show as stalled by now
            raise RuntimeError("replay interrupted")
        await asyncio.sleep(0.1)  # 20 chunks: a replay of 2 s or more, longer than the stall time
        return await real_step(*args, **kwargs)

    monkeypatch.setattr(live, "replay_step", slow_step_failing_once)
    await metrics.start()
    writing = True

    async def keep_writing() -> None:  # events keep waiting for the tail: a replay without progress would stall it
        batch = 0
        while writing:
            batch += 1
            await db.execute(INSERT_SQL, f"live-{batch}-", 20)
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(metrics.caught_up.wait(), 10)
        async with pool.acquire() as conn:
            await store.save(conn, definition(LATE))
        await metrics.reload_campaigns()
        assert metrics.engine.pending
        writer = asyncio.create_task(keep_writing())
        conditions: list[str] = []
        while metrics.engine.pending:
            conditions.append((await metrics.supervisor.check())[TAIL_LOOP])
            await asyncio.sleep(0.1)
        writing = False
        await writer
        assert "stalled" not in conditions, conditions
        assert steps > STORED // SPAN and metrics.supervisor.loops[TAIL_LOOP].restarts == 1

        async def caught_up() -> bool:
            return metrics.engine.last_seq == await db.fetchval("SELECT max(seq) FROM events")

        await wait_until(caught_up)
        await assert_late_matches_sql(metrics.engine, db)
    finally:
        writing = False
        await metrics.stop()
        await pool.close()
