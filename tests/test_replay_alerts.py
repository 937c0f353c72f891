"""Alerts leave a campaign alone while its stored events are replayed, and judge it normally once they are counted.

A campaign defined after its events is replayed in chunks inside the tail (``app/metrics/replay.py``),
with tail reads and evaluations between rounds: until the replay ends its windows miss events, so a
rule on low orders would fire on partial data.
"""

from __future__ import annotations

import asyncio

import asyncpg

from alerts.evaluation.lifecycle import Lifecycle, Observation
from alerts.evaluation.live import AlertService
from app.campaigns import store
from app.metrics import live
from app.metrics.live import LiveMetrics
from tests.conftest import wait_until
from tests.helpers import definition

LATE = "late"
STORED = 6_000
SPAN = 200
"""30 chunks, each slowed: a replay of about 3 s, with evaluations during it."""
STEP_DELAY_S = 0.1
RULES = f"""
rules:
  - name: orders_low
    kind: static
    metric: orders_paid
    window: 10m
    summary: {{en: "orders low", zh: "订单偏低"}}
    runbook: {{en: check, zh: 检查}}
    conditions:
      warning: {{op: "<", value: {STORED // 2}}}
  - name: orders_all_counted
    kind: static
    metric: orders_paid
    window: 10m
    summary: {{en: "all orders counted", zh: "订单已计"}}
    runbook: {{en: none, zh: 无}}
    conditions:
      reminder: {{op: ">=", value: {STORED}}}
"""
INSERT_SQL = (
    "INSERT INTO events (event_id, type, occurred_at, campaign, order_id, amount, user_id) "
    "SELECT $1 || g, 'order_paid', now() - interval '2 minutes', $2, 'o' || g, 10, 'u' || (g % 50) "
    "FROM generate_series(1, $3) g"
)


async def test_no_alert_is_judged_on_a_campaign_still_replaying_and_it_is_judged_normally_after(
    dsn, db, tmp_path, monkeypatch
):
    (tmp_path / "pack.yaml").write_text(RULES)
    await db.execute(INSERT_SQL, "late-", LATE, STORED)
    real_step = live.replay_step

    async def slow_step(*args, **kwargs) -> set[str]:
        await asyncio.sleep(STEP_DELAY_S)
        return await real_step(*args, **kwargs)

    monkeypatch.setattr(live, "replay_step", slow_step)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    metrics = LiveMetrics(pool, dsn, replay_span=SPAN)
    service = AlertService(metrics, pool, tmp_path)
    judged_while_replaying: list[Observation] = []
    evaluations_while_replaying = 0
    pending_while_replaying: list[str] = []

    def watched(view, marks=None):
        replaying = LATE in metrics.engine.pending
        observations = evaluate(view, marks)
        if replaying:
            judged_while_replaying.extend(o for o in observations if o.labels["campaign"] == LATE)
        return observations

    async def counted():
        nonlocal evaluations_while_replaying
        evaluations_while_replaying += LATE in metrics.engine.pending
        return await evaluate_once()

    writing = True

    async def keep_writing() -> None:  # another campaign's events: tail updates that wake the evaluator
        batch = 0
        while writing:
            batch += 1
            await db.execute(INSERT_SQL, f"other-{batch}-", "other", 5)
            await asyncio.sleep(0.05)

    await metrics.start()
    await service.start()
    evaluate, evaluate_once = service.evaluator.evaluate, service.evaluate_once
    service.evaluator.evaluate = watched  # type: ignore[method-assign]
    service.evaluate_once = counted  # type: ignore[method-assign]
    writer = asyncio.create_task(keep_writing())
    try:
        await asyncio.wait_for(metrics.caught_up.wait(), 10)
        async with pool.acquire() as conn:
            await store.save(conn, definition(LATE))
        await metrics.reload_campaigns()
        assert LATE in metrics.engine.pending
        while LATE in metrics.engine.pending:
            pending_while_replaying += [
                a.rule for a in service.lifecycle.alerts.values() if a.labels["campaign"] == LATE
            ]
            await asyncio.sleep(0.02)
        assert evaluations_while_replaying >= 2, "evaluations ran during the replay"
        assert judged_while_replaying == [], [(o.rule, o.triggered) for o in judged_while_replaying]
        assert pending_while_replaying == []

        writing = False
        await writer

        async def stored() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM alerts WHERE campaign = $1", LATE))

        await wait_until(stored, timeout=5)
        alerts = {a.rule: a.status for a in service.lifecycle.alerts.values() if a.labels["campaign"] == LATE}
        assert alerts == {"orders_all_counted": "firing"}, "judged on every event once the replay is done"
        rules = await db.fetch("SELECT rule, status FROM alerts WHERE campaign = $1", LATE)
        assert [tuple(r) for r in rules] == [("orders_all_counted", "firing")]
    finally:
        writing = False
        await writer
        await service.stop()
        await metrics.stop()
        await pool.close()


def test_a_held_campaign_keeps_its_firing_alert_and_drops_its_pending_one():
    lifecycle = Lifecycle()
    firing = Observation("stock_low", {"campaign": LATE, "sku": "A"}, frozenset({"warning"}), frozenset())
    pending = Observation("orders_low", {"campaign": LATE}, frozenset({"warning"}), frozenset())
    lifecycle.observe([firing], 0.0, {})
    lifecycle.observe([firing, pending], 1.0, {"orders_low": 60.0})
    assert {a.rule: a.status for a in lifecycle.alerts.values()} == {"stock_low": "firing", "orders_low": "pending"}
    lifecycle.hold(LATE)
    assert {a.rule: a.status for a in lifecycle.alerts.values()} == {"stock_low": "firing"}
    kinds = [t.kind for t in lifecycle.observe([], 3.0, {"orders_low": 60.0})]
    assert kinds == ["resolved"], "once judged again, an unobserved alert resolves as before"
