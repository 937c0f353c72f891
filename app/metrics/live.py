"""The engine at the edge: tails the events table, checkpoints its state, pushes snapshots to subscribers.

The tailer reads ``events`` in ``seq`` order, only below every write still in
flight (ingest marks its writes, migration 0006), so events stored by any process — this server, another ingest
replica, ``warroom import`` — are counted exactly once. It is woken right
after each local commit, by ``NOTIFY warroom_events`` for other writers
(ingest processes included), and polls every second as a fallback; wake-ups
closer than ``TAIL_MIN_GAP_S`` are coalesced into one read. Snapshots are
pushed to subscribers at most ``PUBLISH_INTERVAL_S`` apart, so a burst of
10k events/s becomes a few updates per second.

The tail, publishing, checkpoints and the LISTEN connection are supervised loops
(``app.core.supervision``): any error restarts them with backoff, and the LISTEN
connection is opened again after the database comes back. The tail is stalled
when stored events have waited longer than ``TAIL_STALL_AFTER_S`` while it
applied nothing. A campaign defined after its events is replayed in bounded chunks between tail
reads, each one progress (``app/metrics/replay.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import NoReturn

import asyncpg

from app.campaigns import store as campaign_store
from app.core.supervision import Progress, Supervisor
from app.metrics.collector import EngineCollector
from app.metrics.engine import Engine
from app.metrics.measures import EVENT_COLUMNS, Event
from app.metrics.replay import REPLAY_BATCH, REPLAY_SPAN, replay_step
from app.metrics.snapshot import Snapshot

log = logging.getLogger(__name__)

TAIL_BATCH = 20_000
POLL_INTERVAL_S = 1.0
TAIL_MIN_GAP_S = 0.05
"""Tails start at least this far apart: with single events every commit notifies, and one read per
commit (hundreds a second) cost the engine more in round trips than in applying events. Snapshots
are published every PUBLISH_INTERVAL_S anyway."""
PUBLISH_INTERVAL_S = 0.2
CHECKPOINT_INTERVAL_S = 15.0
CHECKPOINT_NAME = "engine"
CHECKPOINT_WRITER_TIMEOUT_S = 300.0
"""How long the child pickling a checkpoint may take before it is killed (and the checkpoint retried later)."""
SUBSCRIBER_QUEUE = 4
CHANNEL = "warroom_events"
TAIL_STALL_AFTER_S = 30.0
REPLAY_ROUND_S = 0.5
"""A replay runs chunk after chunk for about this long, then the tail reads new events: a campaign defined
over millions of stored events keeps the others' numbers live."""
LISTEN_CHECK_S = 2.0
"""The LISTEN connection is checked this often (a round trip), so one lost in an outage is replaced."""
CHECKPOINT_STALL_AFTER_S = CHECKPOINT_INTERVAL_S + CHECKPOINT_WRITER_TIMEOUT_S + 60.0
TAIL_LOOP, PUBLISH_LOOP, CHECKPOINT_LOOP, LISTEN_LOOP = (
    "metrics-tail",
    "metrics-publish",
    "metrics-checkpoint",
    "metrics-listen",
)

WAITING_SQL = "SELECT EXISTS (SELECT 1 FROM events WHERE seq > $1)"
"""Stored events the engine has not applied: the tail's backlog."""

HORIZON_SQL = "SELECT events_tail_horizon(), (SELECT last_value FROM events_seq_seq)"
"""The horizon, and the last seq drawn: when they are equal no write in flight holds the tail back."""
TAIL_SQL = f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3"


async def read_tail(conn: asyncpg.Connection, after_seq: int, limit: int) -> list[asyncpg.Record]:
    """Up to ``limit`` events after ``after_seq``, in ``seq`` order, none above the horizon (migration 0006)."""
    return (await read_tail_to_horizon(conn, after_seq, limit))[0]


async def read_tail_to_horizon(
    conn: asyncpg.Connection, after_seq: int, limit: int
) -> tuple[list[asyncpg.Record], bool]:
    """``read_tail``, and whether the horizon was the last seq drawn (no write in flight held it back).

    Writers commit in parallel, so a higher ``seq`` can be visible before a lower one; reading past the
    horizon could skip the lower one for good. The horizon is read in its own statement, before the rows:
    a statement's snapshot is taken when it starts, and a horizon computed later inside the same
    statement (from live locks) could cover a write that committed after that snapshot, whose rows the
    scan would then skip while reading later ones.
    """
    horizon, last_drawn = await conn.fetchrow(HORIZON_SQL)
    return await conn.fetch(TAIL_SQL, after_seq, horizon, limit), horizon == last_drawn


to_event: Callable[[asyncpg.Record], Event] = Event._make
"""A tail row is an ``Event`` field for field (labels stay JSON text; the engine parses the few it needs)."""


@dataclass(eq=False)
class Subscription:
    """Snapshots of one campaign, newest last; a slow reader only ever misses intermediate ones."""

    campaign: str
    queue: asyncio.Queue[Snapshot] = field(default_factory=lambda: asyncio.Queue(SUBSCRIBER_QUEUE))

    def offer(self, snapshot: Snapshot) -> None:
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(snapshot)

    async def __aiter__(self) -> AsyncIterator[Snapshot]:
        while True:
            yield await self.queue.get()


class LiveMetrics:
    """Owns the engine in a running server: catch-up, tailing, checkpoints and snapshot fan-out."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        clock: Callable[[], float] = time.time,
        supervisor: Supervisor | None = None,
        replay_span: int = REPLAY_SPAN,
    ) -> None:
        self.pool = pool
        self.replay_span = replay_span
        self.dsn = dsn
        self.clock = clock
        self.supervisor = supervisor or Supervisor()
        self.engine = Engine()
        self._wake = asyncio.Event()
        self._dirty: set[str] = set()
        self._subscribers: set[Subscription] = set()
        self._checkpointed: tuple[int, tuple[tuple[str, int], ...]] = (0, ())
        """What the last checkpoint holds: ``last_seq`` and the replay cursors (a replay's progress is saved too)."""
        self.caught_up = asyncio.Event()
        self._reloads: set[asyncio.Task[None]] = set()
        self._update_listeners: list[Callable[[], None]] = []

    async def start(self) -> None:
        async with self.pool.acquire() as conn:
            definitions = await campaign_store.fetch_all(conn)
            row = await conn.fetchrow("SELECT last_seq, state FROM metric_checkpoints WHERE name = $1", CHECKPOINT_NAME)
        if row is not None:
            try:
                self.engine = Engine.load(zlib.decompress(row["state"]), definitions)
                self._checkpointed = (row["last_seq"], ())
                log.info("metrics resumed from checkpoint", extra={"last_seq": row["last_seq"]})
            except Exception as exc:  # an unreadable checkpoint is rebuilt from the events, not fatal
                log.warning("checkpoint unreadable (%s); replaying all events", exc)
                self.engine = Engine(definitions)
        else:
            self.engine = Engine(definitions)
        supervisor = self.supervisor
        supervisor.start(LISTEN_LOOP, self._listen_loop)
        supervisor.start(TAIL_LOOP, self._tail_loop, stall_after_s=TAIL_STALL_AFTER_S, backlog=self._events_waiting)
        supervisor.start(PUBLISH_LOOP, self._publish_loop)
        supervisor.start(CHECKPOINT_LOOP, self._checkpoint_loop, stall_after_s=CHECKPOINT_STALL_AFTER_S)

    async def stop(self) -> None:
        await self.supervisor.stop(LISTEN_LOOP, TAIL_LOOP, PUBLISH_LOOP, CHECKPOINT_LOOP)
        try:
            await self.checkpoint()
        except Exception as exc:  # the events are still stored: the next start replays from the last checkpoint
            log.warning("final checkpoint failed: %r", exc)

    def on_update(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (synchronously, so keep it cheap) whenever new events have been applied."""
        self._update_listeners.append(listener)

    def wake(self) -> None:
        """Called after a local commit: new events are ready to read."""
        self._wake.set()

    async def _listen_loop(self, progress: Progress) -> None:
        """Hold the LISTEN connection; raise when it is lost, so the supervisor opens another.

        While it is away the tail still polls every ``POLL_INTERVAL_S``. Once connected, whatever was
        announced meanwhile is picked up: a tail read and a reload of the campaigns.
        """
        listener = await asyncpg.connect(self.dsn, timeout=LISTEN_CHECK_S * 2)
        try:
            await listener.add_listener(CHANNEL, lambda *_: self._wake.set())
            await listener.add_listener(campaign_store.CHANGED_CHANNEL, lambda *_: self._campaigns_changed())
            self._wake.set()
            await self.reload_campaigns()
            while True:
                await listener.execute("SELECT 1", timeout=LISTEN_CHECK_S)
                progress()
                await asyncio.sleep(LISTEN_CHECK_S)
        finally:
            listener.terminate()

    def _campaigns_changed(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload_campaigns())
        self._reloads.add(task)
        task.add_done_callback(self._reload_done)

    def _reload_done(self, task: asyncio.Task[None]) -> None:
        self._reloads.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "campaigns not reloaded after a change; the LISTEN reconnect reloads them", exc_info=task.exception()
            )

    async def reload_campaigns(self) -> None:
        async with self.pool.acquire() as conn:
            self.engine.configure(await campaign_store.fetch_all(conn))
        self._dirty.update(self.engine.campaigns)
        if self.engine.pending:  # the replay starts now, not at the next poll
            self._wake.set()

    async def catch_up(self, progress: Progress = lambda: None) -> int:
        """Apply every stored event not yet counted; return how many were read. Pending campaigns (defined
        after their events) get one round of their replay first, so several calls may be needed for them.

        ``progress`` is called after each batch applied, and after a read that found nothing because
        there is nothing: not when a write in flight holds the horizon back (if it stays open, the
        tail does not advance, and is stalled once events committed after it wait).
        """
        read = 0
        if self.engine.pending:  # campaigns defined since their first events: a round of their replay first
            await self._replay_round(progress)
        while True:
            async with self.pool.acquire() as conn:
                rows, complete = await read_tail_to_horizon(conn, self.engine.last_seq, TAIL_BATCH)
            if not rows:
                if complete:
                    progress()
                return read
            self._dirty |= self.engine.apply(to_event(row) for row in rows)
            progress()
            read += len(rows)
            for listener in self._update_listeners:
                listener()
            if len(rows) < TAIL_BATCH:
                return read

    async def _replay_round(self, progress: Progress) -> None:
        """Replay pending campaigns chunk by chunk (progress after each) for about ``REPLAY_ROUND_S``."""
        deadline = asyncio.get_running_loop().time() + REPLAY_ROUND_S
        while self.engine.pending:
            async with self.pool.acquire() as conn:
                self._dirty |= await replay_step(conn, self.engine, self.replay_span, REPLAY_BATCH)
            progress()
            if asyncio.get_running_loop().time() >= deadline:
                return

    async def _tail_loop(self, progress: Progress) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            self._wake.clear()  # before reading: a commit announced meanwhile sets it again
            await self.catch_up(progress)
            if not self.caught_up.is_set():
                self.caught_up.set()
                log.info("metrics caught up", extra={"last_seq": self.engine.last_seq})
            if not self.engine.pending:  # else the replay goes on at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_INTERVAL_S)
            await asyncio.sleep(max(0.0, started + TAIL_MIN_GAP_S - loop.time()))

    async def _events_waiting(self) -> bool:
        async with self.pool.acquire() as conn:
            return await conn.fetchval(WAITING_SQL, self.engine.last_seq)

    async def _publish_loop(self, progress: Progress) -> None:
        while True:
            await asyncio.sleep(PUBLISH_INTERVAL_S)
            dirty, self._dirty = self._dirty, set()
            wanted = {s.campaign for s in self._subscribers} & dirty
            now = self.clock()
            for campaign_id in wanted:
                snapshot = self.engine.snapshot(campaign_id, now)
                for subscription in list(self._subscribers):
                    if subscription.campaign == campaign_id:
                        subscription.offer(snapshot)
            progress()

    def subscribe(self, campaign_id: str) -> Subscription:
        """Receive this campaign's snapshots (the current one first); call ``unsubscribe`` when done."""
        subscription = Subscription(campaign_id)
        subscription.offer(self.engine.snapshot(campaign_id, self.clock()))
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def collector(self) -> EngineCollector:
        """The engine's counters for one ``/metrics`` scrape (``app.core.telemetry`` knows no engine)."""
        return EngineCollector(self.engine)

    async def _checkpoint_loop(self, progress: Progress) -> None:
        """Checkpoints at once when (re)started, so a failed one is retried with the loop's backoff."""
        while True:
            await self.checkpoint()
            progress()
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)

    async def checkpoint(self) -> None:
        """Save the engine state if it changed (new events, or a replay's progress) since the last checkpoint."""
        if self._checkpoint_mark() == self._checkpointed:
            return
        async with self.pool.acquire() as conn:  # first, so no state is pickled while the database is away
            mark = self._checkpoint_mark()
            last_seq = mark[0]
            try:
                async with asyncio.timeout(CHECKPOINT_WRITER_TIMEOUT_S):
                    state = await snapshot_state(self.engine)
            except TimeoutError:
                raise CheckpointError(
                    f"the checkpoint writer took longer than {CHECKPOINT_WRITER_TIMEOUT_S:g} s; killed"
                ) from None
            await conn.execute(
                "INSERT INTO metric_checkpoints (name, last_seq, state) VALUES ($1, $2, $3) "
                "ON CONFLICT (name) DO UPDATE SET last_seq = excluded.last_seq, state = excluded.state,"
                " saved_at = now()",
                CHECKPOINT_NAME,
                last_seq,
                state,
            )
        self._checkpointed = mark

    def _checkpoint_mark(self) -> tuple[int, tuple[tuple[str, int], ...]]:
        return self.engine.last_seq, tuple(sorted(self.engine.pending.items()))


class CheckpointError(Exception):
    """The process writing a checkpoint's state failed."""


async def snapshot_state(engine: Engine) -> bytes:
    """The engine's state as of now, pickled and compressed by a forked child process.

    The fork is a copy-on-write snapshot taken in an instant, so the tailer may go on applying events
    while the child pickles; pickling in the loop stopped every websocket, alert and API request for
    as long as it took (0.8 s for a minute of 5,000 busy SKUs, growing with the catalog). The price is
    memory: pickling touches every object, so the child may copy up to the engine's whole heap while it
    runs. A child that fails is reported; one that outlives a cancelled caller (a timeout around this
    call, or a stop) is killed.
    """
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        raise
    if pid == 0:  # the child: write the state and leave without any of the parent's clean-up
        _write_state_and_exit(engine, read_fd, write_fd)
    os.close(write_fd)
    reading = asyncio.ensure_future(asyncio.to_thread(_read_all, read_fd))
    try:
        data = await asyncio.shield(reading)
    except BaseException:
        os.kill(pid, signal.SIGKILL)  # the pipe then closes, so the read ends
        await asyncio.shield(reading)
        raise
    finally:
        # The child is exiting (or was killed); reaped in a thread, which finishes even if this is cancelled again.
        _, status = await asyncio.shield(asyncio.to_thread(os.waitpid, pid, 0))
    if status != 0:
        raise CheckpointError(f"the checkpoint writer exited with status {os.waitstatus_to_exitcode(status)}")
    return data


def _write_state_and_exit(engine: Engine, read_fd: int, write_fd: int) -> NoReturn:
    status = 1
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)  # not the server's handlers: a stop kills this copy outright
        os.close(read_fd)
        data = zlib.compress(engine.dump(), 1)
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view) :]
        status = 0
    except (
        BaseException
    ) as exc:  # the parent reports the status; stderr's lock may be held by a thread lost in the fork
        os.write(2, f"checkpoint writer failed: {exc!r}\n".encode())
    finally:
        os._exit(status)


def _read_all(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as source:
        return source.read()
