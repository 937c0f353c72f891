"""Prometheus metrics about the service itself, exposed at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CollectorRegistry
from starlette.requests import Request
from starlette.responses import Response

disable_created_metrics()

EVENTS = Counter(
    "warroom_events", "Events received, by type and outcome (accepted, duplicate, rejected).", ["type", "outcome"]
)
INGEST_REFUSED = Counter("warroom_ingest_refused", "Requests refused before commit, by reason.", ["reason"])
REQUEST_EVENTS = Histogram(
    "warroom_ingest_request_events",
    "Events per ingest request.",
    buckets=(1, 10, 50, 100, 500, 1000, 5000, 10000),
)
GROUP_EVENTS = Histogram(
    "warroom_ingest_group_events",
    "Events per group commit (one COPY transaction).",
    buckets=(1, 10, 50, 100, 500, 1000, 5000, 10000, 20000),
)
COMMIT_SECONDS = Histogram(
    "warroom_ingest_commit_seconds",
    "Time to COPY and commit one group.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
QUEUE_DEPTH = Gauge("warroom_ingest_queue_events", "Events waiting for a group commit.")
WALL_PAGES = Gauge("warroom_wall_pages", "Wall pages connected to this server, each with its own push loop.")
NOTIFICATION_ATTEMPTS = Counter(
    "warroom_notification_attempts",
    "Delivery attempts to contact points, by contact point and outcome (delivered, failed, gave_up).",
    ["contact_point", "outcome"],
)
NOTIFICATION_SECONDS = Histogram(
    "warroom_notification_send_seconds",
    "Time one delivery attempt took (Apprise call), by contact point.",
    ["contact_point"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DATABASE_UP = Gauge("warroom_database_up", "1 when the last database operation succeeded.")
LOOP_UP = Gauge(
    "warroom_loop_up", "1 while a supervised loop runs and makes progress; 0 when dead or stalled.", ["loop"]
)
LOOP_STALLED = Gauge(
    "warroom_loop_stalled", "1 while a supervised loop has work waiting but makes no progress.", ["loop"]
)
LOOP_RESTARTS = Counter("warroom_loop_restarts", "Times a supervised loop failed and was started again.", ["loop"])
LOOP_PROGRESS_AGE = Gauge(
    "warroom_loop_seconds_since_progress", "Seconds since a supervised loop last made progress.", ["loop"]
)


KEY_LOOKUPS = Counter("warroom_key_lookups", "API key lookups that reached the database (cache misses).")
AUTH_THROTTLED = Counter(
    "warroom_auth_throttled", "Key checks refused with 429 because their address failed too many key checks."
)
SESSION_LOOKUPS = Counter("warroom_session_lookups", "Session cookie lookups that reached the database (cache misses).")
SILENCES_UNREADABLE = Counter(
    "warroom_silences_unreadable",
    "Stored silences skipped because they cannot be read (each logged and counted once per process).",
)


async def metrics_endpoint(request: Request) -> Response:
    """The process's metrics, and the engine's counters (``LiveMetrics.collector``) when this server runs it."""
    body = generate_latest()
    metrics = getattr(getattr(request.app.state, "services", None), "metrics", None)  # the full server's only
    if metrics is not None:
        engine_registry = CollectorRegistry(auto_describe=False)
        engine_registry.register(metrics.collector())
        body += generate_latest(engine_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
