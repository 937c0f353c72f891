"""The live metrics engine seen through the rules' ``MetricView``: one view per campaign and evaluation, on the
campaign's clock (``app/campaigns/clock.py``), values cached."""

from __future__ import annotations

from app.metrics.engine import WINDOW_METRICS, Engine
from app.metrics.snapshot import Pacing, SkuRow

STOCK_FIELDS = {
    "stock_on_hand": "on_hand",
    "sell_out_eta_min": "sell_out_eta_min",
    "sell_rate_per_min": "sell_rate_per_min",
}
PACING_FIELDS = {"pct_of_target": "pct_complete", "projected_pct": "projected_pct"}
MIN_GROWTH_SPAN_S = 300.0
"""Growth against last year needs at least this much pre-heat to be measured."""
POINT_IN_TIME = frozenset(STOCK_FIELDS) | frozenset(PACING_FIELDS)
"""Metrics read as they are now, whatever the rule's window."""
METRIC_NAMES = (*WINDOW_METRICS, *STOCK_FIELDS, *PACING_FIELDS)


def known_metric(name: str) -> bool:
    return name in METRIC_NAMES or (name.startswith("metric:") and len(name) > len("metric:"))


class EngineView:
    """Reads one campaign of the engine at wall time ``wall``, that is at ``now`` on the campaign's clock; create a
    new view for each evaluation (its caches are per evaluation)."""

    def __init__(self, engine: Engine, campaign: str, wall: float) -> None:
        self.engine = engine
        self.campaign = campaign
        self.wall = wall
        self.clock = engine.clock(campaign, wall)
        self.now = self.clock.now
        self._skus: dict[str, dict[str, SkuRow]] = {}
        self._pacing: dict[str, Pacing] = {}

    def campaigns(self) -> list[str]:
        """The campaign when the rules judge it now (``Engine.judged``), else nothing.

        Events of undefined campaigns are counted but not alerted on; a campaign defined after its events is
        left out while they are replayed (``app/metrics/replay.py``): its recent windows would lack recent
        events, and rules on low orders or stock would fire on partial data. A night that is not on (finished,
        not begun, or last year's loaded as a baseline) is not judged either.
        """
        return [self.campaign] if self.engine.judged(self.campaign, self.clock) else []

    def labels(self, campaign: str, by: str) -> list[str]:
        return self.engine.labels(campaign, by)

    def value(
        self, campaign: str, metric: str, start: float, end: float, by: str | None, label: str | None
    ) -> float | None:
        if metric in STOCK_FIELDS:
            if by != "sku" or label is None:
                return None
            row = self._sku_rows(campaign).get(label)
            value = getattr(row, STOCK_FIELDS[metric]) if row else None
            return float(value) if value is not None else None
        if metric in PACING_FIELDS:
            if campaign not in self._pacing:
                self._pacing[campaign] = self.engine.snapshot(campaign, self.wall).pacing
            return getattr(self._pacing[campaign], PACING_FIELDS[metric])
        return self.engine.window(campaign, metric, start, end, by, label)

    def baseline(
        self, campaign: str, metric: str, start: float, end: float, by: str | None, label: str | None
    ) -> float | None:
        last_year = self._last_year(campaign, metric)
        if last_year is None:
            return None
        baseline, offset = last_year
        if not self.engine.reached(baseline, end - offset, self.wall):
            return None
        if by is not None and self.engine.states[baseline].series(f"{by}:{label}") is None:
            return None  # a SKU, channel or category last year never had: no reference, not a reference of zero
        return self.engine.window(baseline, metric, start - offset, end - offset, by, label)

    def growth(self, campaign: str, metric: str) -> float | None:
        last_year = self._last_year(campaign, metric)
        if last_year is None:
            return None
        baseline, offset = last_year
        preheat = self.engine.campaigns[campaign].phases.preheat
        start = preheat.start.timestamp()
        end = min(preheat.end.timestamp(), self.now)
        if end - start < MIN_GROWTH_SPAN_S or not self.engine.reached(baseline, end - offset, self.wall):
            return None
        this_year_value = self.engine.window(campaign, metric, start, end)
        last_year_value = self.engine.window(baseline, metric, start - offset, end - offset)
        return this_year_value / last_year_value if this_year_value and last_year_value else None

    def data_since(self, campaign: str) -> float | None:
        state = self.engine.states.get(campaign)
        return state.first_event_at if state is not None else None

    def attribute(self, campaign: str, sku: str, name: str) -> float | None:
        definition = self.engine.campaigns.get(campaign)
        item = next((s for s in definition.skus if s.sku == sku), None) if definition else None
        return float(getattr(item, name)) if item is not None else None

    def _last_year(self, campaign: str, metric: str) -> tuple[str, float] | None:
        """The baseline campaign's id and the seconds back to the same moment of it, when ``metric`` of
        ``campaign`` can be compared with last year: stock and pacing are read as they are now (last year has
        no "now"), and a baseline without a definition or with events still replaying is no reference."""
        if metric in POINT_IN_TIME:
            return None
        definition = self.engine.campaigns.get(campaign)
        offset = self.engine.baseline_offset(definition) if definition else None
        if definition is None or offset is None or not self._baseline_complete(definition.baseline):
            return None
        assert definition.baseline is not None
        return definition.baseline, offset

    def _baseline_complete(self, baseline: str | None) -> bool:
        """A baseline campaign with counted events, none still replaying (a partial last year is no reference)."""
        return baseline in self.engine.states and baseline not in self.engine.pending

    def _sku_rows(self, campaign: str) -> dict[str, SkuRow]:
        if campaign not in self._skus:
            self._skus[campaign] = {row.sku: row for row in self.engine.skus_at(campaign, self.now, sort="sku")}
        return self._skus[campaign]
