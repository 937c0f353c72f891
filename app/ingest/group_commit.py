"""Group commit: events from concurrent requests are written together, durably and exactly once.

Each request hands its validated rows to the ``GroupCommitter`` and waits.
Writer tasks take everything queued (up to ``group_events``) and write it in
one transaction:

- a small group is inserted from arrays (``unnest``) with ``ON CONFLICT
  (event_id) DO NOTHING``, one statement, one round trip;
- a large group is COPied straight into ``events`` (the cheapest write
  PostgreSQL has). If one of its event_ids is already stored, the COPY fails
  as a whole and nothing is written; the group is then COPied into a
  per-connection staging table and moved with ``ON CONFLICT (event_id) DO
  NOTHING``, which reports exactly which rows were new.

Before any row draws a ``seq``, the transaction takes a shared advisory mark
(``events_write_begin()``, held to COMMIT) that lets the metrics tail read
only below the oldest write in flight; writers no longer wait for each
other. Only after COMMIT
are the waiting requests told how many of their events were new and how many
were duplicates, so a 2xx always means durable. The queue is bounded in
events: when it is full callers are refused instead of the process growing.
Writers are supervised loops (``app.core.supervision``); one is stalled when
submissions wait while it has committed nothing for a while.

A database that cannot be used now fails a group with ``IngestUnavailable``
(503, retry), never isolating anything. Only values PostgreSQL refuses (SQLSTATE
class 22/23, or a value the driver cannot send) are pinned on events: a failed
group first commits each submission alone, and a submission refused alone is
written row by row in ONE transaction, each row under a savepoint (two round trips
a row, one commit); every other event is stored and the refused ones are reported
per item (``CommitResult.refused``), like validation errors. The search is bounded
(``search_exhausted``): after ``MAX_REFUSED_PER_SUBMISSION`` refusals or
``REFUSED_SEARCH_MAX_S`` seconds, the submission's remaining rows are refused per
item, unstored, so a batch of bad values cannot hold a writer for long.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import asyncpg

from app.core import telemetry
from app.core.database import database_unavailable, refusal_reason, refused_data
from app.core.supervision import Progress, Supervisor
from app.ingest.events import COLUMNS, Row

log = logging.getLogger(__name__)

STAGING_TABLE = "staging_events"
RETRY_AFTER_S = 1

_COLUMN_LIST = ", ".join(COLUMNS)
CREATE_STAGING_SQL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} ON COMMIT DELETE ROWS "
    f"AS SELECT {_COLUMN_LIST} FROM events WITH NO DATA"
)
ORDERED = "WITH ordered AS MATERIALIZED (SELECT events_write_begin(), pg_notify('warroom_events', ''))"
"""Marks this transaction as writing events from a seq bound on (migration 0006), so the metrics tail
reads only below the oldest write in flight and never skips a row that commits late, while writers
commit in parallel; the notification wakes tailers. Joined into the INSERT, it is evaluated before the
first row (and its seq) is produced."""
MOVE_SQL = (
    f"{ORDERED} INSERT INTO events ({_COLUMN_LIST}) SELECT s.* FROM ordered, {STAGING_TABLE} s "
    f"ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)
_ARRAY_TYPES = {
    "occurred_at": "timestamptz",
    "quantity": "bigint",
    "amount": "numeric",
    "value": "float8",
    "labels": "jsonb",
    "props": "jsonb",
}
"""Column types other than text, for the array parameters of ``INSERT_SQL``."""
INSERT_SQL = (
    f"{ORDERED} INSERT INTO events ({_COLUMN_LIST}) SELECT u.* FROM ordered, unnest("
    + ", ".join(f"${i}::{_ARRAY_TYPES.get(name, 'text')}[]" for i, name in enumerate(COLUMNS, 1))
    + ") AS u ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)
"""One statement, one round trip, in an implicit transaction: the lock is held only while it runs."""
BEGIN_ORDERED_SQL = "BEGIN; SELECT events_write_begin(), pg_notify('warroom_events', '')"
"""Opens a transaction marked as writing events, in one round trip (simple query protocol)."""
ROW_INSERT_SQL = INSERT_SQL.removeprefix(f"{ORDERED} ").replace("FROM ordered, unnest(", "FROM unnest(")
"""``INSERT_SQL`` for a transaction already opened by ``BEGIN_ORDERED_SQL``: rows written one by one."""
MAX_REFUSED_PER_SUBMISSION = 100
"""After this many refused events, the rest of a submission is refused without being tried: a batch
of bad values must not hold a writer for long (other clients' events wait behind it)."""
REFUSED_SEARCH_MAX_S = 2.0
"""Trying a submission's rows one by one stops after this long (well within the default commit timeout)."""
STAGED_GROUPS_AFTER_DUPLICATE = 20
"""After a direct COPY met an already stored event_id, this many large groups go through staging."""
ARRAY_INSERT_MAX_ROWS = 100
"""Groups up to this size are inserted from arrays; larger ones are COPied (cheaper per row once the
extra round trips are amortized). Measured on the benchmark's rows: see bench/RESULTS.md."""
CONFLICT_ERRORS = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
"""A clash with another writer, e.g. two retries of overlapping batches taking the same event ids in
opposite orders: PostgreSQL rolled the whole transaction back, so the group is simply written again."""
CONFLICT_ATTEMPTS = 3
CONFLICT_BACKOFF_S = 0.05
"""Up to this long (random) before writing a clashing group again, so the two writers do not meet again."""


class IngestUnavailable(Exception):
    """The events could not be committed now; the client should retry after ``retry_after`` seconds."""

    def __init__(self, reason: str, retry_after: int = RETRY_AFTER_S) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


CommitFailure = Literal["clash", "unavailable", "isolate", "refused", "internal"]


def commit_failure(exc: Exception, submissions: int) -> CommitFailure:
    """What a failed group commit of ``submissions`` submissions means.

    A clash with another writer is written again; a database that cannot be used now (connection lost,
    shutting down, the driver's "cannot switch to state" after a dropped connection…) fails the whole
    group with 503, never 422: the events are valid and the client must retry them. Only an error
    about the values, met by one submission alone, is pinned on its events (``_commit_refused``); in a
    larger group any other error first isolates the submissions, and an unexplained one on a single
    submission is a 503 as well.
    """
    if isinstance(exc, CONFLICT_ERRORS):
        return "clash"
    if database_unavailable(exc):
        return "unavailable"
    if submissions > 1:
        return "isolate"
    return "refused" if refused_data(exc) else "internal"


@dataclass(frozen=True, slots=True)
class CommitResult:
    accepted: int
    duplicates: int
    refused: tuple[tuple[int, str], ...] = ()
    """Events PostgreSQL refused, not stored: (index in the submitted rows, why)."""


def search_exhausted(refusals: int, now: float, deadline: float) -> str | None:
    """Why to stop trying a submission's rows one by one (the rest are refused with this reason), or None."""
    if refusals >= MAX_REFUSED_PER_SUBMISSION:
        return (
            f"not stored: too many events of this request were refused by the database (at least "
            f"{MAX_REFUSED_PER_SUBMISSION}); fix them and send this event again"
        )
    if now > deadline:
        return "not stored: finding the events the database refused took too long; fix them and send this event again"
    return None


@dataclass(slots=True)
class _Submission:
    rows: list[Row]
    future: asyncio.Future[CommitResult]
    staged: list[int] = field(default_factory=list)
    """Indexes of the rows this submission put into the group (first occurrence of each event_id)."""


def staged_rows(submission: _Submission, seen: set[str]) -> list[Row]:
    """The submission's rows to write: the first occurrence of each event_id not ``seen`` yet in the group
    (``seen`` grows by them), with their indexes recorded in ``submission.staged``."""
    submission.staged = []
    rows: list[Row] = []
    for index, row in enumerate(submission.rows):
        if row[0] not in seen:
            seen.add(row[0])
            submission.staged.append(index)
            rows.append(row)
    return rows


async def prepare_connection(conn: asyncpg.Connection) -> None:
    """Pool ``init`` hook: every connection gets its own staging table."""
    await conn.execute(CREATE_STAGING_SQL)


class GroupCommitter:
    """Coalesces submissions from many requests into few COPY transactions."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        writers: int,
        group_events: int,
        queue_events: int,
        commit_timeout_s: float,
        drain_timeout_s: float,
        on_commit: Callable[[], None] = lambda: None,
        supervisor: Supervisor | None = None,
    ) -> None:
        """``commit_timeout_s``: how long a submission waits for its commit; ``drain_timeout_s``: how long
        ``drain_and_stop`` commits what is queued. Both are policies of the committer (what it answers or
        logs when they pass), so they are set here rather than by a caller's cancel scope."""
        self._pool = pool
        self._supervisor = supervisor or Supervisor()
        self._on_commit = on_commit
        self._group_events = group_events
        self._queue_events = queue_events
        self._commit_timeout_s = commit_timeout_s
        self._drain_timeout_s = drain_timeout_s
        self._queue: asyncio.Queue[_Submission] = asyncio.Queue()
        self._queued_events = 0
        self._loops = [f"ingest-writer-{i}" for i in range(writers)]
        self._closing = False
        self._staged_groups_left = 0

    @property
    def queued_events(self) -> int:
        """Events handed to the writers and not yet committed (what the queue limit counts)."""
        return self._queued_events

    def start(self) -> None:
        for name in self._loops:
            self._supervisor.start(name, self._run, backlog=self._has_queue)

    async def drain_and_stop(self) -> None:
        """Refuse new work, commit what is queued (up to ``drain_timeout_s``), then stop the writers."""
        self._closing = True
        try:
            await asyncio.wait_for(self._queue.join(), self._drain_timeout_s)
        except TimeoutError:
            log.error("shutdown: %d queued events not committed before the grace period", self._queued_events)
        await self._supervisor.stop(*self._loops)

    async def submit(self, rows: list[Row]) -> CommitResult:
        """Queue rows for the next group commit and wait until they are durable (up to ``commit_timeout_s``)."""
        if self._closing:
            raise IngestUnavailable("server is shutting down")
        if self._queued_events and self._queued_events + len(rows) > self._queue_events:
            telemetry.INGEST_REFUSED.labels(reason="queue_full").inc()
            raise IngestUnavailable("ingest queue is full")
        future: asyncio.Future[CommitResult] = asyncio.get_running_loop().create_future()
        self._queued_events += len(rows)
        telemetry.QUEUE_DEPTH.set(self._queued_events)
        self._queue.put_nowait(_Submission(rows, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._commit_timeout_s)
        except TimeoutError:
            telemetry.INGEST_REFUSED.labels(reason="commit_timeout").inc()
            raise IngestUnavailable("commit did not finish in time; retry (retries are deduplicated)") from None

    async def _has_queue(self) -> bool:
        return not self._queue.empty()

    async def _run(self, progress: Progress) -> None:
        while True:
            group = [await self._queue.get()]
            size = len(group[0].rows)
            while size < self._group_events and not self._queue.empty():
                submission = self._queue.get_nowait()
                group.append(submission)
                size += len(submission.rows)
            try:
                await self._commit_group(group, progress)
                progress()
            except BaseException:  # the writer restarts; its callers are not left waiting for the timeout
                self._fail(group, IngestUnavailable("the commit was interrupted"))
                raise
            finally:
                self._queued_events -= size
                telemetry.QUEUE_DEPTH.set(self._queued_events)
                for _ in group:
                    self._queue.task_done()

    async def _commit_group(self, group: list[_Submission], progress: Progress) -> None:
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                await self._write(group)
                return
            except Exception as exc:
                outcome = commit_failure(exc, len(group))
                if outcome == "clash":
                    log.warning(
                        "group commit clashed with another writer (attempt %d of %d): %s",
                        attempt,
                        CONFLICT_ATTEMPTS,
                        exc,
                    )
                    await asyncio.sleep(random.uniform(0, CONFLICT_BACKOFF_S))
                    continue
                if outcome == "unavailable":
                    log.warning("database unavailable during commit: %r", exc)
                    self._fail(group, IngestUnavailable("database unavailable"))
                elif outcome == "isolate":
                    await self._isolate(group, progress)
                elif outcome == "refused":
                    await self._commit_refused(group[0], exc, progress)
                else:
                    log.error("commit failed unexpectedly; the client is asked to retry", exc_info=exc)
                    self._fail(group, IngestUnavailable("internal error while committing"))
                return
        self._fail(group, IngestUnavailable("the write kept clashing with concurrent writes of the same events"))

    async def _isolate(self, group: list[_Submission], progress: Progress) -> None:
        """The group failed, perhaps for one submission's data: commit each submission alone, so only the
        one at fault is refused (and the writer lives on whatever the error was)."""
        for submission in group:
            await self._commit_group([submission], progress)

    async def _commit_refused(self, submission: _Submission, exc: Exception, progress: Progress) -> None:
        """PostgreSQL refused a value of this submission: store the rest, report the refused events per item."""
        log.warning(
            "the database refused a value in a submission of %d events; finding which: %s", len(submission.rows), exc
        )
        try:
            inserted, refused = await self._insert_each(staged_rows(submission, set()), progress)
        except Exception as error:  # the database went away meanwhile: nothing was committed, retry everything
            log.warning("finding the refused events failed: %r", error)
            reason = "database unavailable" if database_unavailable(error) else "the commit failed"
            self._fail([submission], IngestUnavailable(reason))
            return
        log.error("the database refused %d event(s): %s", len(refused), "; ".join(sorted(set(refused.values()))))
        self._resolve([submission], inserted, refused)

    async def _insert_each(self, rows: list[Row], progress: Progress) -> tuple[set[str], dict[str, str]]:
        """Write rows (distinct event_ids) one by one, each under a savepoint, in one transaction and one
        commit; return the event_ids stored and, per refused event_id, why. Bounded by
        ``search_exhausted``. Any error other than a refused value rolls everything back and is raised,
        so the whole submission is answered 503 and nothing is stored twice or lost."""
        inserted: set[str] = set()
        refused: dict[str, str] = {}
        deadline = time.monotonic() + REFUSED_SEARCH_MAX_S
        async with self._pool.acquire() as conn:
            await conn.execute(BEGIN_ORDERED_SQL + "; SAVEPOINT row")
            try:
                for index, row in enumerate(rows):
                    reason = search_exhausted(len(refused), time.monotonic(), deadline)
                    if reason:
                        refused.update((later[0], reason) for later in rows[index:])
                        break
                    try:
                        inserted |= {
                            record[0] for record in await conn.fetch(ROW_INSERT_SQL, *([value] for value in row))
                        }
                        await conn.execute("RELEASE SAVEPOINT row; SAVEPOINT row")
                    except Exception as error:
                        if not refused_data(error) or database_unavailable(error):
                            raise
                        await conn.execute("ROLLBACK TO SAVEPOINT row")
                        refused[row[0]] = refusal_reason(error)
                    progress()
            except BaseException:
                if not conn.is_closed():
                    await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
        self._on_commit()
        return inserted, refused

    async def _write(self, group: list[_Submission]) -> None:
        rows: list[Row] = []
        seen: set[str] = set()
        for submission in group:
            rows += staged_rows(submission, seen)
        self._resolve(group, await self._insert(rows))

    async def _insert(self, rows: list[Row]) -> set[str]:
        """Commit rows with distinct event_ids in one transaction; return the event_ids that were new."""
        started = time.perf_counter()
        async with self._pool.acquire() as conn:
            if len(rows) <= ARRAY_INSERT_MAX_ROWS:
                inserted = {record[0] for record in await conn.fetch(INSERT_SQL, *zip(*rows, strict=False))}
            elif self._staged_groups_left == 0 and await self._copy_direct(conn, rows):
                inserted = {row[0] for row in rows}
            else:
                self._staged_groups_left = max(0, self._staged_groups_left - 1)
                async with conn.transaction():
                    await conn.copy_records_to_table(STAGING_TABLE, records=rows, columns=COLUMNS)
                    inserted = {record[0] for record in await conn.fetch(MOVE_SQL)}
        telemetry.COMMIT_SECONDS.observe(time.perf_counter() - started)
        telemetry.GROUP_EVENTS.observe(len(rows))
        self._on_commit()
        return inserted

    async def _copy_direct(self, conn: asyncpg.Connection, rows: list[Row]) -> bool:
        """COPY straight into ``events`` in a transaction marked as writing events; False (nothing stored)
        if an event_id was already there, and the next few groups go through staging, since retries come
        in bursts."""
        await conn.execute(BEGIN_ORDERED_SQL)
        try:
            await conn.copy_records_to_table("events", records=rows, columns=COLUMNS)
        except asyncpg.UniqueViolationError:
            await conn.execute("ROLLBACK")
            self._staged_groups_left = STAGED_GROUPS_AFTER_DUPLICATE
            return False
        except BaseException:
            if not conn.is_closed():
                await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")
        return True

    @staticmethod
    def _resolve(group: list[_Submission], inserted: set[str], refused: dict[str, str] | None = None) -> None:
        """Tell each submission what became of its rows: new, already stored, or refused (by event_id)."""
        outcomes: Counter[tuple[str, str]] = Counter()
        refused = refused or {}
        for submission in group:
            rows = submission.rows
            accepted_by_type = Counter(rows[i][1] for i in submission.staged if rows[i][0] in inserted)
            refusals = tuple((i, refused[row[0]]) for i, row in enumerate(rows) if row[0] in refused) if refused else ()
            refused_by_type = Counter(rows[i][1] for i, _ in refusals)
            for event_type, count in Counter(row[1] for row in rows).items():
                outcomes[(event_type, "accepted")] += accepted_by_type[event_type]
                outcomes[(event_type, "rejected")] += refused_by_type[event_type]
                outcomes[(event_type, "duplicate")] += (
                    count - accepted_by_type[event_type] - refused_by_type[event_type]
                )
            accepted = sum(accepted_by_type.values())
            result = CommitResult(accepted, len(rows) - accepted - len(refusals), refusals)
            if not submission.future.done():
                submission.future.set_result(result)
        for (event_type, outcome), count in outcomes.items():
            telemetry.EVENTS.labels(type=event_type, outcome=outcome).inc(count)

    @staticmethod
    def _fail(group: list[_Submission], error: Exception) -> None:
        for submission in group:
            if not submission.future.done():
                submission.future.set_exception(error)
                submission.future.exception()
