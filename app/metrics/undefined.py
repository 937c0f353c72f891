"""Events naming a campaign nobody defined: counted per name in a bounded table, never aggregated.

Any ingest key can name any campaign, so the engine keeps state only for defined
campaigns (a flood of made-up names cannot take its memory or hide a real
campaign). What arrives for the others still shows, per name, through
``GET /v1/undefined-campaigns`` and ``/metrics``: a typo such as ``doubel11`` or
a sender whose campaign is not configured yet is visible, not silently lost.
Defining the campaign later counts its stored events (the engine replays them).

The table keeps ``MAX_NAMES`` names. A new name past that takes the slot of the
least counted one, whose count moves to ``OTHER``: a name that keeps sending
stays listed whatever flood of one-off names arrives, and the total stays exact.
"""

from __future__ import annotations

from app.metrics.snapshot import UndefinedCampaign, UndefinedReport

MAX_NAMES = 100
OTHER = "(other)"


class UndefinedCampaigns:
    """Events per undefined campaign name: at most ``MAX_NAMES`` names, the rest summed in ``other``."""

    __slots__ = ("counts", "other")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.other = 0

    def add(self, name: str) -> None:
        counts = self.counts
        count = counts.get(name)
        if count is not None:
            counts[name] = count + 1
            return
        if len(counts) >= MAX_NAMES:
            least = min(counts, key=counts.__getitem__)
            self.other += counts.pop(least)
        counts[name] = 1

    def forget(self, name: str) -> None:
        """The campaign is defined now: its events are counted by the engine, no longer here."""
        self.counts.pop(name, None)

    @property
    def total(self) -> int:
        return self.other + sum(self.counts.values())

    def report(self) -> UndefinedReport:
        """Names with the most events first; ``other`` sums the names the table had no room for."""
        ranked = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        return UndefinedReport(
            events=self.total,
            campaigns=[UndefinedCampaign(campaign=name, events=count) for name, count in ranked],
            other_events=self.other,
            names_kept=MAX_NAMES,
        )
