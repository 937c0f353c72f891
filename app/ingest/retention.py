"""Retention by time: delete events received before a cut-off, in bounded batches.

Events are deleted in ``seq`` ranges (``seq`` grows with ``received_at``), so
each batch is a short index range scan and a short transaction that never
blocks ingest for long. An event_id deleted here is no longer deduplicated:
keep events longer than any integrator retries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

BATCH_ROWS = 50_000

DELETE_SQL = "DELETE FROM events WHERE seq >= $1 AND seq < $2 AND received_at < $3"


async def prune(
    conn: asyncpg.Connection,
    before: datetime,
    progress: Callable[[int, int], None] = lambda done, total: None,
    batch_rows: int = BATCH_ROWS,
) -> int:
    """Delete events received before ``before``; report ``(deleted, estimated total)`` after each batch."""
    bounds = await conn.fetchrow("SELECT min(seq) AS low, max(seq) AS high FROM events WHERE received_at < $1", before)
    if bounds["low"] is None:
        return 0
    low, high = bounds["low"], bounds["high"]
    total = high - low + 1
    deleted = 0
    while low <= high:
        result = await conn.execute(DELETE_SQL, low, min(low + batch_rows, high + 1), before)
        deleted += int(result.split()[-1])
        low += batch_rows
        progress(deleted, total)
    return deleted
