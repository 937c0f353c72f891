"""Alert delivery end to end: events in over HTTP, messages out through Apprise to a real local webhook,
through outages of the receiver and restarts of the server, and the websocket stream with resume."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import create_key, free_port, start_server, wait_until
from tests.helpers import STOCK_RULES, DispatchProbe, live_campaigns, stock
from tests.webhook import WebhookReceiver

SECRET = "topsecret-4242"
LATER_S = 3600.0
"""Beyond every group and repeat interval the tests configure: where the dispatch clock is moved to show that
nothing more would be sent about alerts that resolved or were acknowledged."""
NEXT_LOOK_S = 60.0
"""Past the default group interval (30 s), within the default repeat interval (30 m): the next look at a group."""


def notify_yaml(receiver: WebhookReceiver, **route: str) -> str:
    options = "".join(f"\n  {k}: {v}" for k, v in {"group_wait": "200ms", **route}.items())
    return f"""
contact_points:
  duty:
    urls: ["{receiver.url}?+X-Token={SECRET}"]
route:
  receiver: duty{options}
"""


@pytest.fixture
def setup(tmp_path: Path):
    """Rule pack, campaign and a notify file for one webhook receiver on a free port."""

    def make(receiver: WebhookReceiver, **route: str) -> dict[str, str]:
        rules = tmp_path / "rules"
        rules.mkdir(exist_ok=True)
        (rules / "pack.yaml").write_text(STOCK_RULES)
        (tmp_path / "notify.yaml").write_text(notify_yaml(receiver, **route))
        return {
            "WARROOM_RULES_DIR": str(rules),
            "WARROOM_CAMPAIGNS_DIR": str(live_campaigns(tmp_path / "campaigns")),
            "WARROOM_NOTIFY_FILE": str(tmp_path / "notify.yaml"),
            "WARROOM_PUBLIC_URL": "https://warroom.example.com",
        }

    return make


async def notifications(http: httpx.AsyncClient, operator: str) -> list[dict]:
    return (await http.get("/v1/notifications", headers={"X-API-Key": operator})).json()


async def test_alert_reaches_the_webhook_with_bilingual_text_and_its_resolution_follows(dsn, setup, caplog):
    """Secrets must not reach the logs even at debug level (Apprise logs whole URLs there)."""
    receiver = WebhookReceiver(free_port()).start()
    ingest, operator, screen = [await create_key(dsn, s) for s in ("ingest", "operator", "screen")]
    server = start_server(dsn, **setup(receiver, group_interval="1s"))
    probe = DispatchProbe(server.services.delivery)
    caplog.set_level(logging.DEBUG)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

            async def post(*events: dict[str, Any]) -> httpx.Response:
                return await http.post("/v1/events", json={"events": list(events)}, headers={"X-API-Key": ingest})

            assert (await post(stock("s1", 0))).status_code == 202
            await wait_until(lambda: _count(receiver, 1), timeout=10)
            [message] = receiver.received
            assert message["type"] == "failure", "emergency"
            assert message["title"].startswith("[告警·紧急 Firing · Emergency]")
            assert "SKU-1001：剩余 0（紧急） / SKU-1001: 0 left (Emergency)" in message["message"]
            assert "处置 / First step: 立即补货 / replenish now" in message["message"]
            assert "https://warroom.example.com/wall/double11-demo#inventory" in message["message"]
            assert receiver.headers[0]["X-Token"] == SECRET

            await wait_until(lambda: _all_recorded(http, operator, 1))  # the receiver answers before it is written
            sent = await notifications(http, operator)
            assert len(sent) == 1 and sent[0]["status"] == "delivered" and sent[0]["attempts"] == 1
            assert sent[0]["kind"] == "firing" and sent[0]["attempt_log"][0]["ok"] is True
            assert sent[0]["target"] == f"json://127.0.0.1:{receiver.port}/***"
            assert (await http.get("/v1/notifications", headers={"X-API-Key": screen})).status_code == 403
            scraper = {"Authorization": f"Bearer {await create_key(dsn, 'metrics')}"}
            exposition = (await http.get("/metrics", headers=scraper)).text
            assert 'warroom_notification_attempts_total{contact_point="duty",outcome="delivered"}' in exposition
            points = (await http.get("/v1/contact-points", headers={"X-API-Key": operator})).text
            assert SECRET not in points and SECRET not in json.dumps(sent)

            assert (await post(stock("s2", 5000))).status_code == 202
            await wait_until(lambda: _count(receiver, 2), timeout=10)
            resolved = receiver.received[1]
            assert resolved["type"] == "success" and resolved["title"].startswith("[已恢复·紧急 Resolved · Emergency]")
            await wait_until(lambda: _all_recorded(http, operator, 2))
            assert await probe.advance(LATER_S) == [], "nothing more to say about a resolved alert"
            assert len(receiver.received) == 2, "each message once"
    finally:
        server.stop()
        receiver.stop()
    assert SECRET not in caplog.text


async def test_receiver_down_then_up_is_retried_with_every_attempt_recorded(dsn, setup):
    receiver = WebhookReceiver(free_port())
    ingest, operator = [await create_key(dsn, s) for s in ("ingest", "operator")]
    server = start_server(dsn, **setup(receiver))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await http.post("/v1/events", json={"events": [stock("s1", 0)]}, headers={"X-API-Key": ingest})

            async def failed_twice() -> bool:
                sent = await notifications(http, operator)
                return len(sent) == 1 and sent[0]["attempts"] >= 2

            await wait_until(failed_twice, timeout=15)
            [pending] = await notifications(http, operator)
            assert pending["status"] == "pending" and "Connection error" in pending["last_error"]
            assert SECRET not in json.dumps(pending)
            assert all(not a["ok"] for a in pending["attempt_log"])

            receiver.start()
            await wait_until(lambda: _count(receiver, 1), timeout=20)

            async def recorded() -> bool:  # the attempt is written down just after the receiver has the message
                return (await notifications(http, operator))[0]["status"] != "pending"

            await wait_until(recorded, timeout=5)
            [delivered] = await notifications(http, operator)
            assert delivered["status"] == "delivered" and delivered["attempt_log"][-1]["ok"]
            assert delivered["attempts"] == len(delivered["attempt_log"]) >= 3
    finally:
        server.stop()
        receiver.stop()


async def test_restart_during_retries_neither_loses_nor_repeats_a_notification(dsn, setup, db):
    receiver = WebhookReceiver(free_port())
    ingest, operator = [await create_key(dsn, s) for s in ("ingest", "operator")]
    settings = setup(receiver)
    server = start_server(dsn, **settings)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await http.post("/v1/events", json={"events": [stock("s1", 0)]}, headers={"X-API-Key": ingest})

            async def attempted() -> bool:
                sent = await notifications(http, operator)
                return len(sent) == 1 and sent[0]["attempts"] >= 1

            await wait_until(attempted, timeout=15)
    finally:
        server.stop()

    receiver.start()
    try:
        for _ in range(2):
            server = start_server(dsn, **settings)
            probe = DispatchProbe(server.services.delivery)
            try:
                await wait_until(lambda: _count(receiver, 1), timeout=20)
                async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                    await wait_until(lambda: _all_recorded(http, operator, 1))
                assert await probe.advance(NEXT_LOOK_S) == [], "the stored log says the alert was announced"
            finally:
                server.stop()
        assert len(receiver.received) == 1, "delivered once across two restarts"
        assert await db.fetchval("SELECT count(*) FROM notifications") == 1
        assert await db.fetchval("SELECT status FROM notifications") == "delivered"
    finally:
        receiver.stop()


async def test_acknowledgment_stops_repeats(dsn, setup):
    receiver = WebhookReceiver(free_port()).start()
    ingest, operator = [await create_key(dsn, s) for s in ("ingest", "operator")]
    server = start_server(dsn, **setup(receiver, group_interval="200ms", repeat_interval="1s"))
    probe = DispatchProbe(server.services.delivery)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await http.post("/v1/events", json={"events": [stock("s1", 0)]}, headers={"X-API-Key": ingest})
            await wait_until(lambda: _count(receiver, 3), timeout=10)
            assert "仍未处理" in receiver.received[1]["title"], "repeats while unacknowledged"
            alert = (await http.get("/v1/alerts", headers={"X-API-Key": operator})).json()[0]
            ack = await http.post(f"/v1/alerts/{alert['id']}/ack", json={}, headers={"X-API-Key": operator})
            assert ack.status_code == 200
            count = len(receiver.received)
            assert await probe.advance(LATER_S) == [], "no repeat once acknowledged"
            await wait_until(lambda: _none_pending(http, operator))
            assert len(receiver.received) <= count + 1, "at most one repeat already on its way"
    finally:
        server.stop()
        receiver.stop()


async def test_stream_resumes_after_the_last_seq_without_gaps_or_duplicates(dsn, setup):
    receiver = WebhookReceiver(free_port()).start()
    ingest, screen = [await create_key(dsn, s) for s in ("ingest", "screen")]
    operator = await create_key(dsn, "operator", name="duty-lead")
    server = start_server(dsn, **setup(receiver))
    ws_url = server.url.replace("http://", "ws://") + "/v1/alerts/stream"
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

            async def post(*events: dict[str, Any]) -> httpx.Response:
                return await http.post("/v1/events", json={"events": list(events)}, headers={"X-API-Key": ingest})

            async with websockets.connect(ws_url) as socket:
                await socket.send(json.dumps({"key": operator}))
                snapshot = json.loads(await socket.recv())
                assert snapshot == {
                    "type": "snapshot",
                    "seq": 0,
                    "alerts": [],
                    "clocks": [],
                    "resolved": [],
                    "awaiting": [],
                }
                await post(stock("s1", 100))
                fired = json.loads(await asyncio.wait_for(socket.recv(), 10))
                assert fired["type"] == "transition" and fired["kind"] == "firing" and fired["severity"] == "warning"
                assert fired["labels"]["sku"] == "SKU-1001" and fired["summary_zh"] == "SKU-1001：剩余 100（警告）"
            last = fired["seq"]

            await post(stock("s2", 0))
            alert_id = fired["id"]

            async def escalated() -> bool:
                alerts = (await http.get("/v1/alerts", headers={"X-API-Key": operator})).json()
                return bool(alerts) and alerts[0]["severity"] == "emergency"

            await wait_until(escalated, timeout=10)
            await http.post(f"/v1/alerts/{alert_id}/ack", json={"comment": "on it"}, headers={"X-API-Key": operator})
            await post(stock("s3", 5000))

            async def resolved() -> bool:
                return (await http.get("/v1/alerts", headers={"X-API-Key": operator})).json() == []

            await wait_until(resolved, timeout=10)
            async with websockets.connect(f"{ws_url}?after={last}&token={screen}") as socket:
                missed = [json.loads(await asyncio.wait_for(socket.recv(), 10)) for _ in range(3)]
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(socket.recv(), 1.0)
            assert [m["kind"] for m in missed] == ["escalated", "acknowledged", "resolved"]
            assert [m["seq"] for m in missed] == sorted(m["seq"] for m in missed) and missed[0]["seq"] > last
            assert missed[1]["values"] == {"by": "duty-lead", "comment": "on it"}
    finally:
        server.stop()
        receiver.stop()


async def test_stream_refuses_bad_keys_and_bad_resume_points(dsn):
    ingest = await create_key(dsn, "ingest")
    operator = await create_key(dsn, "operator")
    server = start_server(dsn)
    ws_url = server.url.replace("http://", "ws://") + "/v1/alerts/stream"
    try:
        for url, first in (
            (ws_url, {"key": "wr_nope"}),
            (ws_url, {"key": ingest}),
            (f"{ws_url}?token={operator}", None),
            (f"{ws_url}?after=-1", None),
        ):
            async with websockets.connect(url) as socket:
                if first is not None:
                    await socket.send(json.dumps(first))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(socket.recv(), 10)
                assert closed.value.rcvd.code in (4400, 4401, 4403)
    finally:
        server.stop()


async def _count(receiver: WebhookReceiver, n: int) -> bool:
    return len(receiver.received) >= n


async def _none_pending(http: httpx.AsyncClient, operator: str) -> bool:
    return all(n["status"] != "pending" for n in await notifications(http, operator))


async def _all_recorded(http: httpx.AsyncClient, operator: str, n: int) -> bool:
    """``n`` notifications, every one delivered and its attempt written down."""
    sent = await notifications(http, operator)
    return len(sent) == n and all(s["status"] == "delivered" for s in sent)


async def test_ten_skus_selling_out_together_are_one_message_and_silenced_alerts_none(dsn, setup):
    receiver = WebhookReceiver(free_port()).start()
    ingest, operator = [await create_key(dsn, s) for s in ("ingest", "operator")]
    server = start_server(dsn, **setup(receiver, group_wait="1s"))
    probe = DispatchProbe(server.services.delivery)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            silence = await http.post(
                "/v1/silences",
                json={
                    "matchers": ["sku=SKU-1011"],
                    "ends_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                    "reason": "known: delisted",
                },
                headers={"X-API-Key": operator},
            )
            assert silence.status_code == 201
            skus = [f"SKU-{1001 + i}" for i in range(11)]
            events = [{**stock(f"out-{sku}", 0), "sku": sku} for sku in skus]
            assert (
                await http.post("/v1/events", json={"events": events}, headers={"X-API-Key": ingest})
            ).status_code == 202

            async def all_firing() -> bool:
                return len((await http.get("/v1/alerts", headers={"X-API-Key": operator})).json()) == 11

            await wait_until(all_firing, timeout=10)
            await wait_until(lambda: _count(receiver, 1), timeout=10)
            await wait_until(lambda: _all_recorded(http, operator, 1))
            later = await probe.advance(NEXT_LOOK_S)  # within the silence too
            assert later == [] and len(receiver.received) == 1, "one message for the group"
            text = receiver.received[0]["message"]
            assert all(f"{sku}: 0 left" in text for sku in skus[:10]) and "SKU-1011" not in text
            assert "(10 firing)" in receiver.received[0]["title"]
    finally:
        server.stop()
        receiver.stop()


async def test_repeats_queued_during_an_outage_are_cancelled_by_the_ack_and_orphans_fail(dsn, setup, db, tmp_path):
    receiver = WebhookReceiver(free_port())
    ingest, operator = [await create_key(dsn, s) for s in ("ingest", "operator")]
    settings = setup(receiver, group_interval="300ms", repeat_interval="1s")
    server = start_server(dsn, **settings)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await http.post("/v1/events", json={"events": [stock("s1", 0)]}, headers={"X-API-Key": ingest})

            async def repeats_queued() -> bool:
                return await db.fetchval("SELECT count(*) FROM notifications WHERE kind = 'repeat'") >= 2

            await wait_until(repeats_queued, timeout=15)
            alert = (await http.get("/v1/alerts", headers={"X-API-Key": operator})).json()[0]
            await http.post(f"/v1/alerts/{alert['id']}/ack", json={}, headers={"X-API-Key": operator})
            receiver.start()
            await wait_until(lambda: _count(receiver, 1), timeout=30)

            async def settled() -> bool:
                return await db.fetchval("SELECT count(*) FROM notifications WHERE status = 'pending'") == 0

            await wait_until(settled, timeout=30)
            statuses = dict(await db.fetch("SELECT kind, array_agg(DISTINCT status) FROM notifications GROUP BY kind"))
            assert statuses["firing"] == ["delivered"] and statuses["repeat"] == ["cancelled"]
            assert len(receiver.received) == 1 and "[告警·紧急" in receiver.received[0]["title"]
    finally:
        server.stop()
        receiver.stop()

    await db.execute("UPDATE notifications SET status = 'pending' WHERE kind = 'repeat'")
    (tmp_path / "notify.yaml").write_text(notify_yaml(WebhookReceiver(free_port())))
    restarted = start_server(dsn, **settings)
    try:

        async def orphans_failed() -> bool:
            return await db.fetchval("SELECT count(*) FROM notifications WHERE status = 'pending'") == 0

        await wait_until(orphans_failed, timeout=10)
        errors = await db.fetch("SELECT DISTINCT last_error FROM notifications WHERE kind = 'repeat'")
        assert [r["last_error"] for r in errors] == ["contact point or URL no longer configured"]
    finally:
        restarted.stop()
