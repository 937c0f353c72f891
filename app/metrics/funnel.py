"""The conversion funnel (转化漏斗): visit → product view → add to cart → order → paid.

Stage counts are event counts; step conversion is each stage over the one
before. Benchmarks are the healthy-store step rates from the promotion
playbooks (visit→view 68%, view→cart 35%, cart→order 25%); the payment step
has no published benchmark, so it is compared with the baseline campaign only.
"""

from __future__ import annotations

from app.metrics.snapshot import FunnelStage, Measures

STAGES: tuple[tuple[str, str, str, float | None], ...] = (
    ("visit", "visits", "访问", None),
    ("product_view", "product_views", "浏览商品详情", 0.68),
    ("add_to_cart", "add_to_cart", "加购", 0.35),
    ("order", "orders_created", "下单", 0.25),
    ("paid", "orders_paid", "支付", None),
)


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def funnel(counts: Measures, baseline: Measures | None = None) -> list[FunnelStage]:
    """Stage counts with step conversion, benchmark, and the baseline's step conversion when known."""
    stages: list[FunnelStage] = []
    previous: str | None = None
    for stage, measure, name_zh, benchmark in STAGES:
        count = getattr(counts, measure)
        step = ratio(count, getattr(counts, previous)) if previous else None
        baseline_step = (
            ratio(getattr(baseline, measure), getattr(baseline, previous)) if baseline and previous else None
        )
        stages.append(
            FunnelStage(
                stage=stage,
                name_zh=name_zh,
                count=count,
                step_rate=step,
                benchmark=benchmark,
                baseline_step_rate=baseline_step,
                below_baseline=step is not None and baseline_step is not None and step < baseline_step,
            )
        )
        previous = measure
    return stages
