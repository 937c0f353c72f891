"""Prometheus metrics about the service itself, exposed at ``/metrics``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import Response

from app.metrics.undefined import OTHER as UNDEFINED_OTHER

if TYPE_CHECKING:
    from app.metrics.engine import Engine

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


class EngineCollector:
    """What the metrics engine counted but could not place, read from its state at scrape time (it survives
    restarts in the checkpoint, so these are counters of the engine's whole history, not of this process)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        undefined = CounterMetricFamily(
            "warroom_undefined_campaign_events",
            "Events naming a campaign that is not defined (counted by no campaign), per name;"
            " (other) past the names kept.",
            labels=["campaign"],
        )
        report = self.engine.undefined.report()
        for row in report["campaigns"]:
            undefined.add_metric([row["campaign"]], row["events"])
        undefined.add_metric([UNDEFINED_OTHER], report["other_events"])
        capped = CounterMetricFamily(
            "warroom_engine_key_limit_events",
            "Events of a campaign whose channel, SKU, category, metric series or warehouse was past its key limit.",
            labels=["campaign", "key"],
        )
        unconverted = CounterMetricFamily(
            "warroom_unconverted_amount_events",
            "Order and refund events of a campaign in a currency it has no exchange rate for (kept out of GMV).",
            labels=["campaign", "currency"],
        )
        for campaign_id, state in self.engine.states.items():
            for kind, count in state.capped.items():
                capped.add_metric([campaign_id, kind], count)
            for code, totals in state.unconverted.items():
                unconverted.add_metric([campaign_id, code], totals["events"])
        yield from (undefined, capped, unconverted)


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
    body = generate_latest()
    metrics = getattr(request.app.state, "services", None) and request.app.state.services.metrics
    if metrics is not None:
        engine_registry = CollectorRegistry(auto_describe=False)
        engine_registry.register(EngineCollector(metrics.engine))
        body += generate_latest(engine_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
