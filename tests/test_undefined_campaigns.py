"""Events naming undefined campaigns take no engine state, are counted per name, and count once the campaign is
defined."""

import logging
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from app.campaigns import model as campaigns
from app.campaigns import store
from app.metrics.engine import KEY_LIMITS, Engine
from app.metrics.measures import Event
from app.metrics.snapshot import KeyLimit, UndefinedCampaign
from app.metrics.undefined import MAX_NAMES, OTHER
from tests.conftest import create_key, scrape_metrics, start_server, wait_until
from tests.helpers import definition

NOW = datetime.now(UTC)


def paid(seq: int, campaign: str, **fields) -> Event:
    base = dict(
        seq=seq,
        type="order_paid",
        occurred_at=NOW.timestamp(),
        campaign=campaign,
        channel=None,
        user_id=None,
        anonymous_id=None,
        order_id=f"o{seq}",
        sku=None,
        quantity=None,
        amount=Decimal(1),
        warehouse=None,
        metric=None,
        value=None,
        labels=None,
    )
    base.update(fields)
    return Event(**base)


def test_undefined_campaigns_take_no_state_and_are_counted_in_a_bounded_table():
    engine = Engine([definition("real")])
    engine.apply([paid(seq, f"junk-{seq}") for seq in range(1, 211)])
    engine.apply([paid(seq, "junk-1") for seq in range(211, 221)])
    engine.apply([paid(seq, "real") for seq in range(221, 231)])
    assert set(engine.states) == {"real"}
    assert engine.snapshot("real", NOW.timestamp()).totals.orders_paid == 10
    report = engine.undefined.report()
    assert report.events == 220 and len(report.campaigns) == MAX_NAMES
    assert report.campaigns[0] == UndefinedCampaign("junk-1", 10), "a name that keeps sending keeps its slot"
    assert report.other_events == 220 - 10 - (MAX_NAMES - 1), "junk-1's first event went out with it to (other)"


def test_a_campaign_defined_after_its_events_is_replayed_before_counting_new_ones():
    engine = Engine()
    stored = [paid(seq, "late", amount=Decimal(seq)) for seq in range(1, 6)] + [paid(6, "other")]
    engine.apply(stored)
    assert engine.states == {} and engine.undefined.report().campaigns[0] == UndefinedCampaign("late", 5)

    engine.configure([definition("late")])
    assert engine.pending == {"late": 0} and engine.undefined.report().campaigns == [UndefinedCampaign("other", 1)]
    engine.apply([paid(7, "late", amount=Decimal(7))])
    assert "late" not in engine.states, "held back until its older events are replayed"
    assert engine.replay(["late"], [e for e in stored if e.campaign == "late"][:3], through=3) == {"late"}
    assert engine.pending == {"late": 3}
    assert engine.replay(
        ["late"],
        [paid(4, "late", amount=Decimal(4)), paid(5, "late", amount=Decimal(5)), paid(7, "late", amount=Decimal(7))],
        through=7,
    ) == {"late"}
    assert engine.pending == {} and "late" in engine.counted
    engine.apply([paid(8, "late", amount=Decimal(8))])
    totals = engine.snapshot("late", NOW.timestamp()).totals
    assert totals.orders_paid == 7 and totals.gmv_paid == 1 + 2 + 3 + 4 + 5 + 7 + 8

    engine.configure([])
    assert engine.states == {} and engine.counted == set(), "no longer defined: its state goes, its events stay stored"
    restored = Engine.load(engine.dump(), [definition("late")])
    assert restored.pending == {"late": 0}


def test_every_key_limit_that_drops_data_is_counted_per_kind_and_logged_sparingly(monkeypatch, caplog):
    monkeypatch.setitem(KEY_LIMITS, "sku", 2)
    monkeypatch.setitem(KEY_LIMITS, "stock_sku", 2)
    monkeypatch.setattr("app.metrics.engine.MAX_SKUS", 2)
    engine = Engine([definition("c")])
    with caplog.at_level(logging.WARNING, logger="app.metrics.engine"):
        engine.apply([paid(seq, "c", sku=f"S{seq}") for seq in range(1, 15)])
    snapshot = engine.snapshot("c", NOW.timestamp())
    assert snapshot.key_limits == [KeyLimit("sku", 2, 12), KeyLimit("stock_sku", 2, 12)]
    assert snapshot.dropped_keys == 24
    assert snapshot.totals.orders_paid == 14, "counted under (other): totals stay right"
    assert len([r for r in caplog.records if " sku keys" in r.getMessage()]) == 2, "the 1st and the 10th, not each"


async def caught_up(server, db) -> bool:
    return server.services.metrics.engine.last_seq == await db.fetchval("SELECT coalesce(max(seq), 0) FROM events")


async def test_210_undefined_campaigns_do_not_blind_the_wall_to_a_campaign_defined_later(dsn, db):
    ingest, operator, screen = [await create_key(dsn, scope) for scope in ("ingest", "operator", "screen")]
    junk = [
        {"event_id": f"junk-{i}", "type": "order_paid", "campaign": f"junk-{i}", "order_id": f"j{i}", "amount": 1}
        for i in range(210)
    ]

    def orders(campaign: str, first: int, count: int) -> list[dict]:
        return [
            {
                "event_id": f"{campaign}-{i}",
                "type": "order_paid",
                "campaign": campaign,
                "order_id": f"{campaign}-{i}",
                "amount": 10,
                "user_id": f"u{i}",
            }
            for i in range(first, first + count)
        ]

    async def orders_paid(http: httpx.AsyncClient, campaign: str) -> int | None:
        response = await http.get(f"/v1/campaigns/{campaign}/snapshot", params={"token": screen})
        return response.json()["totals"]["orders_paid"] if response.status_code == 200 else None

    server = start_server(dsn)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            posted = await http.post(
                "/v1/events",
                json={"events": junk + orders("real", 0, 4) + orders("late", 0, 3)},
                headers={"X-API-Key": ingest},
            )
            assert posted.json()["accepted"] == 217
            await wait_until(lambda: caught_up(server, db))
            assert server.services.metrics.engine.states == {}
            assert (await http.get("/v1/campaigns/real/snapshot", params={"token": screen})).status_code == 404

            put = await http.put(
                "/v1/campaigns/real",
                content=campaigns.to_json(definition("real")),
                headers={"X-API-Key": operator, "Content-Type": "application/json"},
            )
            assert put.status_code == 201, put.text
            more = await http.post("/v1/events", json={"events": orders("real", 4, 6)}, headers={"X-API-Key": ingest})
            assert more.json()["accepted"] == 6

            async def counted() -> bool:
                return await orders_paid(http, "real") == 10

            await wait_until(counted)
            undefined = (await http.get("/v1/undefined-campaigns", params={"token": screen})).json()
            other = 210 - (MAX_NAMES - 2)  # the table held real, late and the last 98 junk names; real is defined now
            assert undefined["events"] == 213 and undefined["other_events"] == other
            assert {"campaign": "late", "events": 3} in undefined["campaigns"]
            assert all(c["campaign"] != "real" for c in undefined["campaigns"])
            exposition = await scrape_metrics(http, dsn)
            assert f'warroom_undefined_campaign_events_total{{campaign="{OTHER}"}} {other}.0' in exposition
            assert 'warroom_undefined_campaign_events_total{campaign="late"} 3.0' in exposition
    finally:
        server.stop()

    await store.save(db, definition("late"))  # defined while no server runs: the checkpoint has no state for it
    restarted = start_server(dsn)
    try:
        async with httpx.AsyncClient(base_url=restarted.url, timeout=30) as http:
            assert await orders_paid(http, "real") == 10, "from the checkpoint"

            async def late_counted() -> bool:
                return await orders_paid(http, "late") == 3

            await wait_until(late_counted)
            undefined = (await http.get("/v1/undefined-campaigns", params={"token": screen})).json()
            assert undefined["events"] == 210 and all(c["campaign"] != "late" for c in undefined["campaigns"])
    finally:
        restarted.stop()
