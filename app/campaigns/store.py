"""Campaign definitions in the ``campaigns`` table: save, read and delete, each change announced on a channel.

The I/O half of ``app.campaigns``; the definition itself (and its validation) is ``app.campaigns.model``.
"""

from __future__ import annotations

import asyncpg

from app.campaigns.model import Campaign, from_json, to_json

CHANGED_CHANNEL = "warroom_campaigns"
"""Saving or deleting a campaign notifies this channel (after the change; inside a caller's transaction the
notification waits for its commit), so running servers reload definitions from any writer."""


async def save(conn: asyncpg.Connection, campaign: Campaign) -> bool:
    """Create or replace a campaign; True when it was new."""
    created = await conn.fetchval(
        "INSERT INTO campaigns (id, definition) VALUES ($1, $2::jsonb) "
        "ON CONFLICT (id) DO UPDATE SET definition = excluded.definition, updated_at = now() "
        "RETURNING (xmax = 0)",
        campaign.id,
        to_json(campaign).decode(),
    )
    await conn.execute("SELECT pg_notify($1, $2)", CHANGED_CHANNEL, campaign.id)
    return bool(created)


async def fetch_all(conn: asyncpg.Connection) -> list[Campaign]:
    rows = await conn.fetch("SELECT definition::text FROM campaigns ORDER BY id")
    return [from_json(row[0]) for row in rows]


async def fetch(conn: asyncpg.Connection, campaign_id: str) -> Campaign | None:
    text = await conn.fetchval("SELECT definition::text FROM campaigns WHERE id = $1", campaign_id)
    return from_json(text) if text is not None else None


async def delete(conn: asyncpg.Connection, campaign_id: str) -> bool:
    deleted = await conn.execute("DELETE FROM campaigns WHERE id = $1", campaign_id)
    await conn.execute("SELECT pg_notify($1, $2)", CHANGED_CHANNEL, campaign_id)
    return deleted == "DELETE 1"
