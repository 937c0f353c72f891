"""The engine's counters of what it could not place, as Prometheus metrics read at scrape time.

They live in the engine's state (which survives restarts in the checkpoint), so ``/metrics`` reads them when
scraped instead of counting them as they happen; ``LiveMetrics.collector`` hands one to the endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric

from app.metrics.engine import Engine
from app.metrics.undefined import OTHER as UNDEFINED_OTHER


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
        for row in report.campaigns:
            undefined.add_metric([row.campaign], row.events)
        undefined.add_metric([UNDEFINED_OTHER], report.other_events)
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
