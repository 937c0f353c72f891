"""The long-lived objects one server process runs with, created at start-up and closed at shutdown.

An ingest-role process has no metrics engine and no alert service (``None``): the full server
owns them and reads what the ingest processes commit from the events table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from alerts.evaluation.live import AlertService
from alerts.notify.delivery import DeliveryService
from app.access.keys import KeyStore
from app.access.ratelimit import RateLimiter
from app.access.sessions import SessionStore
from app.core.settings import Settings
from app.core.supervision import Supervisor
from app.ingest.group_commit import GroupCommitter
from app.metrics.live import LiveMetrics


@dataclass
class Services:
    settings: Settings
    pool: asyncpg.Pool
    keys: KeyStore
    limiter: RateLimiter
    committer: GroupCommitter
    schema_head: str
    supervisor: Supervisor
    metrics: LiveMetrics | None = None
    alerts: AlertService | None = None
    delivery: DeliveryService | None = None
    sessions: SessionStore = field(init=False)
    """Session cookies, checked against the database as rarely as keys (both cached for ``WARROOM_KEY_CACHE_S``)."""

    def __post_init__(self) -> None:
        self.sessions = SessionStore(self.pool, self.settings.key_cache_s)
