"""What people read about a rehearsal's alert: its times on the night's clock, marked as a rehearsal.

An alert of a replayed night fired at the night's own time (weeks ago on the wall clock): the API and the stream
say so (``clock``, ``timezone``) and carry where the rehearsed night stands, the wall ages it on the night's clock,
chat messages say 演练 / REHEARSAL, and escalation still counts on the wall clock.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import websockets

from alerts.evaluation.messages import AlertText, compose_group
from alerts.evaluation.severity import Severity
from alerts.evaluation.views import AckRecord, LiveAlert, clock_of
from app.campaigns.clock import REPLAY_LATENESS_S
from dashboard import panels
from tests.conftest import create_key, free_port, start_server, wait_until
from tests.helpers import (
    REHEARSED,
    STOCK_RULES,
    DispatchProbe,
    live_campaigns,
    night_stock,
    rehearsed_night,
    stock,
    watermark,
)
from tests.webhook import WebhookReceiver

ZONE = "Asia/Shanghai"
INTO_THE_NIGHT = timedelta(minutes=28, seconds=5)
ESCALATE_AFTER_S = 300.0


def settings(tmp_path: Path, notify: str | None = None) -> tuple[dict[str, str], datetime]:
    """A server's settings with the stock rules, the demo night on now and last month's night to rehearse; and
    the moment into that night (00:28:05 in Shanghai) the tests replay to."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "pack.yaml").write_text(STOCK_RULES)
    campaigns = live_campaigns(tmp_path / "campaigns")
    env = {"WARROOM_RULES_DIR": str(rules), "WARROOM_CAMPAIGNS_DIR": str(campaigns)}
    if notify is not None:
        (tmp_path / "notify.yaml").write_text(notify)
        env["WARROOM_NOTIFY_FILE"] = str(tmp_path / "notify.yaml")
    return env, rehearsed_night(campaigns) + INTO_THE_NIGHT


def replayed_to(moment: datetime, quantity: int = 0) -> list[dict[str, Any]]:
    """The night replayed up to ``moment``: a stock level then, and the watermark that puts its clock there."""
    stamp = moment.strftime("%H%M%S")
    return [
        night_stock(f"night-{stamp}-{quantity}", quantity, moment),
        watermark(f"mark-{stamp}", moment + timedelta(seconds=REPLAY_LATENESS_S)),
    ]


async def frames_until(socket: Any, *wanted: Any, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Frames received until each of ``wanted`` was satisfied by one of them."""
    seen: list[dict[str, Any]] = []
    while not all(any(check(frame) for frame in seen) for check in wanted):
        seen.append(json.loads(await asyncio.wait_for(socket.recv(), timeout_s)))
    return seen


async def test_the_api_and_the_stream_put_a_rehearsals_alert_on_its_nights_clock(dsn, tmp_path):
    env, moment = settings(tmp_path)
    ingest, operator = await create_key(dsn, "ingest"), await create_key(dsn, "operator")
    server = start_server(dsn, **env)
    ws_url = server.url.replace("http://", "ws://") + "/v1/alerts/stream"
    key = {"X-API-Key": operator}
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http, websockets.connect(ws_url) as socket:
            await socket.send(json.dumps({"key": operator}))
            assert json.loads(await socket.recv())["clocks"] == [], "no night is rehearsed yet"
            posted = await http.post(
                "/v1/events", json={"events": [*replayed_to(moment), stock("live-1", 0)]}, headers={"X-API-Key": ingest}
            )
            assert posted.status_code == 202, posted.text
            frames = await frames_until(
                socket,
                lambda f: f["type"] == "clocks",
                lambda f: f["type"] == "transition" and f["campaign"] == REHEARSED,
            )
            [night] = next(f for f in frames if f["type"] == "clocks")["clocks"]
            assert night["campaign"] == REHEARSED and night["clock"] == "replay" and night["timezone"] == ZONE
            assert night["now"] == moment.timestamp() and night["phase"] == "burst" and night["name_zh"] == "演练之夜"
            wrapup = moment - INTO_THE_NIGHT + timedelta(days=1)
            assert night["next_phase"] == "wrapup" and night["next_phase_at"] == wrapup.timestamp()

            async def both_fired() -> bool:
                return len((await http.get("/v1/alerts", headers=key)).json()) == 2

            await wait_until(both_fired)
            alerts = {a["labels"]["campaign"]: a for a in (await http.get("/v1/alerts", headers=key)).json()}
            rehearsal, live = alerts[REHEARSED], alerts["double11-demo"]
            assert rehearsal["clock"] == "replay" and rehearsal["labels"]["rehearsal"] == "true"
            assert rehearsal["timezone"] == ZONE and rehearsal["fired_at"] == moment.timestamp(), "the night's time"
            assert live["clock"] == "live" and live["timezone"] == ZONE and "rehearsal" not in live["labels"]
            assert abs(live["fired_at"] - datetime.now(UTC).timestamp()) < 60, "a live alert fired on the wall clock"

            stored = {a["campaign"]: a for a in (await http.get("/v1/alerts?status=all", headers=key)).json()}
            assert (stored[REHEARSED]["clock"], stored[REHEARSED]["timezone"]) == ("replay", ZONE)
            assert stored["double11-demo"]["clock"] == "live"
            assert datetime.fromisoformat(stored[REHEARSED]["fired_at"]) == moment
            history = (await http.get("/v1/alerts/history", headers=key)).json()
            assert {(t["campaign"], t["clock"], t["timezone"]) for t in history} == {
                (REHEARSED, "replay", ZONE),
                ("double11-demo", "live", ZONE),
            }
            streamed = next(f for f in frames if f["type"] == "transition" and f["campaign"] == REHEARSED)
            assert streamed["clock"] == "replay" and datetime.fromisoformat(streamed["fired_at"]) == moment

            later = moment + timedelta(minutes=1)
            await http.post("/v1/events", json={"events": replayed_to(later, 5000)}, headers={"X-API-Key": ingest})
            moved = await frames_until(socket, lambda f: f["type"] == "clocks")
            assert moved[-1]["clocks"][0]["now"] == later.timestamp(), "the night's clock follows the replay"
        async with websockets.connect(f"{ws_url}?after={history[-1]['seq']}") as resumed:
            await resumed.send(json.dumps({"key": operator}))
            first = json.loads(await asyncio.wait_for(resumed.recv(), 10))
            assert first["type"] == "clocks" and first["clocks"][0]["campaign"] == REHEARSED, "where the night stands"
        openapi = (await httpx.AsyncClient(base_url=server.url).get("/openapi.json")).json()["components"]["schemas"]
        for name in ("LiveAlert", "StoredAlert", "AlertTransition"):
            assert openapi[name]["properties"]["clock"]["enum"] == ["live", "replay"], name
            assert "timezone" in openapi[name]["properties"], name
    finally:
        server.stop()


def notify_yaml(receiver: WebhookReceiver) -> str:
    """Rehearsals go to no one at first, then escalate to the lead after ``ESCALATE_AFTER_S`` unacknowledged."""
    return f"""
contact_points:
  lead:
    urls: ["{receiver.url}"]
route:
  routes:
    - match: ["rehearsal=true"]
      group_wait: 0s
      escalate:
        - after: {int(ESCALATE_AFTER_S)}s
          receiver: lead
"""


async def test_escalation_of_a_rehearsals_alert_counts_on_the_wall_clock_from_when_it_was_first_seen(dsn, tmp_path):
    """Its ``fired_at`` is the night's time, a month ago: counted from there, the escalation would go out at once."""
    receiver = WebhookReceiver(free_port()).start()
    ingest = await create_key(dsn, "ingest")
    env, moment = settings(tmp_path, notify_yaml(receiver))
    server = start_server(dsn, **env)
    probe = DispatchProbe(server.services.delivery)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await http.post("/v1/events", json={"events": replayed_to(moment)}, headers={"X-API-Key": ingest})

            async def seen() -> bool:
                return any(n.labels.get("campaign") == REHEARSED for n in server.services.delivery._seen.values())

            await wait_until(seen)
            assert [flush for _, flushes in probe.looks for flush in flushes] == [], "not at once"
            assert await probe.advance(ESCALATE_AFTER_S - 30) == [], "not yet five minutes on the wall clock"
            [flush] = await probe.advance(60)
            assert flush.kind == "escalation" and flush.receiver == "lead"
            await wait_until(lambda: _received(receiver))
            [message] = receiver.received
            assert message["title"].startswith("[演练 / REHEARSAL] [升级·紧急 Escalated · Emergency]")
            assert "[演练 / REHEARSAL] SKU-1001：剩余 0（紧急） / SKU-1001: 0 left (Emergency)" in message["message"]
    finally:
        server.stop()
        receiver.stop()


async def _received(receiver: WebhookReceiver) -> bool:
    return bool(receiver.received)


def alert(alert_id: str, fired_at: float, labels: dict[str, str], acknowledged: AckRecord | None = None) -> LiveAlert:
    return LiveAlert(
        seq=None,
        id=alert_id,
        transition=None,
        rule="stock_low",
        labels=labels,
        status="firing",
        severity=Severity.EMERGENCY,
        previous_severity=None,
        fired_at=fired_at,
        resolved_at=None,
        flapping=False,
        values={},
        acknowledged=acknowledged,
        summary_en=f"{alert_id} out",
        summary_zh=f"{alert_id} 断货",
        runbook_en="",
        runbook_zh="",
        link="",
        silenced_by=[],
        inhibited_by=[],
        clock=clock_of(labels),
        timezone=ZONE,
    )


def test_the_walls_feed_ages_a_rehearsals_alert_on_the_nights_clock_and_marks_it():
    night, wall = 1_000_000.0, 4_000_000.0
    feed = panels.alert_feed(
        [alert("rehearsed", night - 125, {"rehearsal": "true"}), alert("live", wall - 40, {})], night, wall, "zh"
    )
    shown = {row.to_plotly_json()["props"]["data-alert"]: row for row in feed}
    rehearsed, live = (shown[k].children for k in ("rehearsed", "live"))
    assert rehearsed[-1].children == "2分钟" and live[-1].children == "40秒", "each on its own clock"
    badge = rehearsed[2].children[0]
    assert badge.children == "演练" and badge.className == "alert-rehearsal"
    assert live[2].children == ["live 断货"], "a live alert has no badge"
    items, _ = panels.banner([alert("rehearsed", night, {"rehearsal": "true"})], wall, "en")
    assert items[0].children[1].children[0].children == "REHEARSAL"


def test_a_chat_message_about_a_rehearsal_says_so_in_each_language():
    rehearsal = AlertText(summary_en="SKU-1 out", summary_zh="SKU-1 断货", severity=Severity.EMERGENCY, rehearsal=True)
    live = AlertText(summary_en="SKU-2 out", summary_zh="SKU-2 断货", severity=Severity.EMERGENCY)
    for language, mark in (("zh", "[演练]"), ("en", "[REHEARSAL]"), ("both", "[演练 / REHEARSAL]")):
        title, body = compose_group("firing", Severity.EMERGENCY, "g", [(rehearsal, True, False)], [], language, "")
        assert title.startswith(f"{mark} ["), language
        assert f"{mark} SKU-1" in body, language
        title, body = compose_group("resolved", Severity.EMERGENCY, "g", [], [rehearsal], language, "")
        assert title.startswith(mark), "its resolution too"
    title, body = compose_group("firing", Severity.EMERGENCY, "g", [(live, True, False)], [], "zh", "")
    assert "演练" not in title and "演练" not in body
