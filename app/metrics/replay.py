"""Counting a campaign defined after its events arrived: its stored events are read back into the engine.

The engine keeps no state for undefined campaigns (``app/metrics/undefined.py``),
so defining one makes it ``pending``; before the tail reads further, its events
up to the engine's ``last_seq`` are read here, by ``seq`` in batches, and
applied in order. The events table has no index on ``campaign`` (one would tax
every insert), so this scans ``seq`` — once per definition, a second or so per
ten million stored events.
"""

from __future__ import annotations

import asyncpg

from app.metrics.engine import Engine
from app.metrics.measures import EVENT_COLUMNS, Event

REPLAY_BATCH = 20_000
REPLAY_SQL = (
    f"SELECT {EVENT_COLUMNS} FROM events "
    "WHERE campaign = ANY($1::text[]) AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4"
)


async def replay(conn: asyncpg.Connection, engine: Engine, batch: int = REPLAY_BATCH) -> set[str]:
    """Feed every pending campaign its stored events; return the campaigns that changed.

    Rows up to ``last_seq`` are all committed (the tail never passes a write in flight), so one pass
    finds them all; a campaign defined meanwhile joins the next batch.
    """
    changed: set[str] = set()
    while engine.pending:
        campaign_ids = sorted(engine.pending)
        through = engine.last_seq
        rows = await conn.fetch(REPLAY_SQL, campaign_ids, min(engine.pending.values()), through, batch)
        if len(rows) == batch:  # cut short: complete only up to the last row read
            through = rows[-1][0]
        changed |= engine.replay(campaign_ids, map(Event._make, rows), through)
    return changed
