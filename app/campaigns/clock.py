"""The campaign clock: the moment a campaign's numbers, comparisons and rules are computed at.

A **live** campaign runs on the wall clock: it keeps moving when no event arrives, so an outage
still shows as orders falling behind last year. A **replayed** campaign (a rehearsal, the demo, a
drill or any sender that marks its progress) runs on event time: its sender posts ``watermark``
events saying how far through the night it has sent, and the clock is the latest watermark less
``REPLAY_LATENESS_S``. Watermarks travel in the event stream, so the clock never passes an event
that was sent before it; a replay at 1x, 60x or as fast as possible gives the same numbers and the
same alerts. Notification timing (group wait, repeats, escalation) stays on the wall clock: people
are real.

Pure: the wall time is passed in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import msgspec

from app.campaigns.model import Campaign

REPLAY_LATENESS_S = 2.0
"""A replay's clock trails its latest watermark by this much, so events a sender posts a moment out of order
(several connections, a retried batch) are still in place when the clock reaches them."""

ClockMode = Literal["live", "replay"]


class CampaignClock(msgspec.Struct, frozen=True):
    """Where one campaign's night stands: ``now`` in epoch seconds, and whether it is live or replayed."""

    mode: ClockMode
    now: float

    @property
    def moment(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


def campaign_clock(watermark: float | None, wall: float) -> CampaignClock:
    """The clock of a campaign whose latest watermark is ``watermark`` (None: never replayed) at wall time ``wall``."""
    if watermark is None:
        return CampaignClock("live", wall)
    return CampaignClock("replay", watermark - REPLAY_LATENESS_S)


def night_is_on(campaign: Campaign, clock: CampaignClock) -> bool:
    """Whether the campaign's night is running on its clock: from the pre-heat's start to the wrap-up's end.

    Only such campaigns are judged by the rules: a finished night, one not begun, or last year's night
    loaded as a baseline raises no alert.
    """
    return campaign.start <= clock.moment < campaign.end
