"""GMV against target: percent complete and the projected final GMV.

With a baseline campaign the projection divides today's GMV by the share of
last year's final GMV that had been reached at the same offset from the
burst start (last year's curve says how far along the night is). Without a
baseline it uses the phase plan: the conventional pre-heat : burst : wrap-up
split of 3 : 6 : 1, spread evenly over each phase. While last year's night is
still being replayed in, its final GMV is not known yet: there is no
projection until it is (a partial total would understate the projection).
Nor is there one before ``MIN_PROJECTION_ORDERS`` paid orders: one ¥3,999
phone ten minutes into a ten-day pre-heat would project a whole night.
"""

from __future__ import annotations

from app.campaigns.model import Campaign
from app.metrics.snapshot import Pacing

PLAN_SHARES = {"preheat": 0.3, "burst": 0.6, "wrapup": 0.1}
MIN_SHARE = 0.02
"""Below this share of the expected total, a projection is too noisy to show."""
MIN_PROJECTION_ORDERS = 20
"""Paid orders needed before GMV is projected: a count of n orders varies by about 1/√n (22% at 20), and one order's
amount decides a projection from a handful alone."""


def plan_share(campaign: Campaign, now: float) -> float:
    """Share of the final GMV the phase plan expects by ``now``."""
    share = 0.0
    for name, phase in campaign.phases.items():
        start, end = phase.start.timestamp(), phase.end.timestamp()
        if now >= end:
            share += PLAN_SHARES[name]
        elif now > start:
            share += PLAN_SHARES[name] * (now - start) / (end - start)
    return share


def pacing(
    campaign: Campaign | None,
    gmv: float,
    now: float,
    baseline_share: float | None,
    awaiting_baseline: bool = False,
    orders: float = MIN_PROJECTION_ORDERS,
) -> Pacing:
    """Target, % complete and projection; ``baseline_share`` is last year's cumulative share at this offset,
    ``awaiting_baseline`` says last year's night is still being loaded, and ``orders`` is how many paid orders make
    ``gmv`` (no projection meanwhile, nor below ``MIN_PROJECTION_ORDERS``)."""
    target = campaign.targets.gmv if campaign else None
    if baseline_share is not None and baseline_share >= MIN_SHARE:
        share, method = baseline_share, "baseline"
    elif awaiting_baseline:
        share, method = 0.0, "none"
    elif campaign is not None:
        share, method = plan_share(campaign, now), "plan"
    else:
        share, method = 0.0, "none"
    projected = gmv / share if share >= MIN_SHARE and orders >= MIN_PROJECTION_ORDERS else None
    return Pacing(
        target=target,
        pct_complete=gmv / target if target else None,
        projected_final=projected,
        projected_pct=projected / target if projected is not None and target else None,
        expected_share_now=share,
        method=method if projected is not None else "none",
    )
