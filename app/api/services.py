"""The long-lived objects one server process runs with, created at start-up and closed at shutdown, and the
FastAPI dependencies that hand each endpoint the ones it uses.

An ingest-role process has ``IngestServices``; the full server has ``FullServices``, which adds the metrics
engine, the alert service and notification delivery (it reads what the ingest processes commit from the
events table). An ingest-role process does not mount the endpoints that need those (``app.server``), so
every field is always there: nothing is optional. The wiring keeps the process's services in
``app.state.services``; endpoints never read it themselves but ask for what they use, e.g.
``metrics: Metrics``; likewise the calling key, ``key: Reader`` or ``key: Operator``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends
from starlette.requests import HTTPConnection

from alerts.evaluation.live import AlertService
from alerts.notify.delivery import DeliveryService
from app.access.auth import operator, reader
from app.access.keys import ApiKey, KeyStore
from app.access.ratelimit import RateLimiter
from app.access.sessions import SessionStore
from app.core.settings import Settings
from app.core.supervision import Supervisor
from app.ingest.group_commit import GroupCommitter
from app.metrics.live import LiveMetrics


@dataclass(frozen=True)
class IngestServices:
    """What every process has: an ingest-role one only this (it satisfies ``app.access.auth.Gate``)."""

    settings: Settings
    pool: asyncpg.Pool
    keys: KeyStore
    limiter: RateLimiter
    committer: GroupCommitter
    sessions: SessionStore
    """Session cookies, checked against the database as rarely as keys (both cached for ``WARROOM_KEY_CACHE_S``)."""
    supervisor: Supervisor
    schema_head: str
    """The migration the code expects (``/readyz`` compares the database's with it)."""


@dataclass(frozen=True)
class FullServices(IngestServices):
    """What the full server has besides: the engines behind campaigns, alerts, notifications and the wall."""

    metrics: LiveMetrics
    alerts: AlertService
    delivery: DeliveryService


def ingest_services(connection: HTTPConnection) -> IngestServices:
    """This process's services (any role); also called directly by endpoints served outside FastAPI's routing."""
    services: IngestServices = connection.app.state.services
    return services


def full_services(connection: HTTPConnection) -> FullServices:
    """The full server's services: only endpoints mounted by the full server ask for them."""
    services: FullServices = connection.app.state.services
    return services


_Ingest = Annotated[IngestServices, Depends(ingest_services)]
_Full = Annotated[FullServices, Depends(full_services)]


def _settings(services: _Ingest) -> Settings:
    return services.settings


def _pool(services: _Ingest) -> asyncpg.Pool:
    return services.pool


def _committer(services: _Ingest) -> GroupCommitter:
    return services.committer


def _sessions(services: _Ingest) -> SessionStore:
    return services.sessions


def _supervisor(services: _Ingest) -> Supervisor:
    return services.supervisor


def _schema_head(services: _Ingest) -> str:
    return services.schema_head


def _metrics(services: _Full) -> LiveMetrics:
    return services.metrics


def _alerts(services: _Full) -> AlertService:
    return services.alerts


def _delivery(services: _Full) -> DeliveryService:
    return services.delivery


AppSettings = Annotated[Settings, Depends(_settings)]
Pool = Annotated[asyncpg.Pool, Depends(_pool)]
Committer = Annotated[GroupCommitter, Depends(_committer)]
Sessions = Annotated[SessionStore, Depends(_sessions)]
Supervision = Annotated[Supervisor, Depends(_supervisor)]
SchemaHead = Annotated[str, Depends(_schema_head)]
Metrics = Annotated[LiveMetrics, Depends(_metrics)]
Alerts = Annotated[AlertService, Depends(_alerts)]
Delivery = Annotated[DeliveryService, Depends(_delivery)]
Reader = Annotated[ApiKey, Depends(reader)]
"""The calling key, allowed to read metrics and alerts (``app.access.auth.reader``)."""
Operator = Annotated[ApiKey, Depends(operator)]
"""The calling key, allowed to change things (``app.access.auth.operator``)."""
