"""The threshold engine in the running server: events in over HTTP, alerts out, persisted across a restart."""

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from alerts.evaluation import store
from tests.conftest import create_key, start_server, wait_until
from tests.helpers import STOCK_RULES, live_campaigns, stock

ACK_CLOCK_TOLERANCE_S = 5.0
"""The server's clock and the test's are the same machine's; this covers the request's round trip."""
STORED_TIME_RESOLUTION_S = 1e-6
"""PostgreSQL keeps timestamps to the microsecond."""


async def firing(http: httpx.AsyncClient, screen: str) -> list[dict]:
    return (await http.get("/v1/alerts", params={"token": screen})).json()


async def test_alert_fires_escalates_is_acknowledged_and_survives_restart(dsn, db, tmp_path):
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "pack.yaml").write_text(STOCK_RULES)
    ingest, screen, operator = [await create_key(dsn, s) for s in ("ingest", "screen", "operator")]
    settings = {
        "WARROOM_RULES_DIR": str(rules_dir),
        "WARROOM_CAMPAIGNS_DIR": str(live_campaigns(tmp_path / "campaigns")),
    }
    server = start_server(dsn, **settings)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

            async def post(*events: dict[str, Any]) -> httpx.Response:
                return await http.post("/v1/events", json={"events": list(events)}, headers={"X-API-Key": ingest})

            assert (await post(stock("s1", 100))).status_code == 202

            async def one_alert() -> bool:
                return len(await firing(http, screen)) == 1

            await wait_until(one_alert, timeout=5)
            alert = (await firing(http, screen))[0]
            assert alert["severity"] == "warning" and alert["labels"] == {
                "campaign": "double11-demo",
                "sku": "SKU-1001",
            }
            assert (
                alert["summary_en"] == "SKU-1001: 100 left (Warning)"
                and alert["summary_zh"] == "SKU-1001：剩余 100（警告）"
            )
            assert alert["values"]["threshold"] == 300 and alert["link"] == "/wall/double11-demo#inventory"
            assert alert["runbook_zh"] == "立即补货"

            assert (await post(stock("s2", 0))).status_code == 202

            async def escalated() -> bool:
                alerts = await firing(http, screen)
                return len(alerts) == 1 and alerts[0]["severity"] == "emergency"

            await wait_until(escalated, timeout=5)
            assert (await firing(http, screen))[0]["id"] == alert["id"], "one alert per fingerprint"

            forbidden = await http.post(f"/v1/alerts/{alert['id']}/ack", json={}, headers={"X-API-Key": screen})
            assert forbidden.status_code == 403
            ack = await http.post(
                f"/v1/alerts/{alert['id']}/ack",
                json={"by": "duty manager", "comment": "restock ordered"},
                headers={"X-API-Key": operator},
            )
            assert ack.status_code == 200 and ack.json()["acknowledged"]["by"] == "duty manager"
            assert abs(ack.json()["acknowledged"]["at"] - time.time()) < ACK_CLOCK_TOLERANCE_S
            assert (await http.post("/v1/alerts/nope/ack", json={}, headers={"X-API-Key": operator})).status_code == 404
    finally:
        server.stop()

    restarted_at = time.time()
    restarted = start_server(dsn, **settings)
    try:
        async with httpx.AsyncClient(base_url=restarted.url, timeout=30) as http:

            async def evaluated_since_restart() -> bool:
                rules = (await http.get("/v1/rules", params={"token": screen})).json()["rules"]
                return (rules[0]["last_evaluated_at"] or 0) > restarted_at + 1

            await wait_until(evaluated_since_restart, timeout=10)
            alerts = await firing(http, screen)
            assert [a["id"] for a in alerts] == [alert["id"]] and alerts[0]["acknowledged"]["by"] == "duty manager"
            stored_ack = alerts[0]["acknowledged"]["at"]
            assert abs(stored_ack - ack.json()["acknowledged"]["at"]) <= STORED_TIME_RESOLUTION_S, (
                "ack time as first shown"
            )
            assert await db.fetchval("SELECT count(*) FROM alerts") == 1
            assert await db.fetchval("SELECT count(*) FROM alert_transitions WHERE kind = 'firing'") == 1

            assert (
                await http.post("/v1/events", json={"events": [stock("s3", 5000)]}, headers={"X-API-Key": ingest})
            ).status_code == 202

            async def resolved() -> bool:
                history = (await http.get("/v1/alerts/history", params={"token": screen})).json()
                return await firing(http, screen) == [] and len(history) == 4

            await wait_until(resolved, timeout=5)
            history = (await http.get("/v1/alerts/history", params={"token": screen})).json()
            assert [h["kind"] for h in history] == ["firing", "escalated", "acknowledged", "resolved"]
            assert history[1]["previous_severity"] == "warning" and history[3]["values"]["value"] == 5000
            assert history[2]["values"] == {"by": "duty manager", "comment": ack.json()["acknowledged"]["comment"]}
            past = (await http.get("/v1/alerts", params={"token": screen, "status": "resolved"})).json()
            assert past[0]["id"] == alert["id"] and past[0]["ack_by"] == "duty manager"
    finally:
        restarted.stop()


async def test_alerts_filter_and_a_resolved_alert_stays_resolved_across_restart(dsn, db, tmp_path):
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "pack.yaml").write_text(STOCK_RULES)
    ingest, screen = await create_key(dsn, "ingest"), await create_key(dsn, "screen")
    settings = {
        "WARROOM_RULES_DIR": str(rules_dir),
        "WARROOM_CAMPAIGNS_DIR": str(live_campaigns(tmp_path / "campaigns")),
    }

    async def ids(http: httpx.AsyncClient, **filters: str) -> list[str]:
        return [a["id"] for a in (await http.get("/v1/alerts", params={"token": screen, **filters})).json()]

    server = start_server(dsn, **settings)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

            async def post(*events: dict[str, Any]) -> httpx.Response:
                return await http.post("/v1/events", json={"events": list(events)}, headers={"X-API-Key": ingest})

            assert (await post(stock("s1", 0, "SKU-1001"), stock("s2", 100, "SKU-1002"))).status_code == 202

            async def two_firing() -> bool:
                return len(await firing(http, screen)) == 2

            await wait_until(two_firing, timeout=5)
            by_sku = {a["labels"]["sku"]: a for a in await firing(http, screen)}
            empty, low = by_sku["SKU-1001"]["id"], by_sku["SKU-1002"]["id"]
            assert await ids(http, severity="emergency") == [empty] and await ids(http, severity="warning") == [low]
            assert await ids(http, severity="reminder") == []
            assert await ids(http, rule="stock_low") == [empty, low] and await ids(http, rule="stock_warning") == []
            assert await ids(http, campaign="double11-demo") == [empty, low]
            assert await ids(http, campaign="double11-2025") == []
            assert await ids(http, status="resolved") == []

            assert (await post(stock("s3", 5000, "SKU-1002"))).status_code == 202

            async def one_resolved() -> bool:
                return await ids(http, status="resolved") == [low]

            await wait_until(one_resolved, timeout=5)
            assert await ids(http) == [empty]
            assert await ids(http, status="all") == [empty, low]
            assert await ids(http, status="all", severity="warning") == [low]
            assert await ids(http, status="all", rule="stock_warning") == []
            assert await ids(http, status="all", campaign="double11-2025") == []
            history = (await http.get("/v1/alerts/history", params={"token": screen})).json()
            assert sorted((h["alert_id"], h["kind"]) for h in history) == sorted(
                [(empty, "firing"), (low, "firing"), (low, "resolved")]
            )
    finally:
        server.stop()

    restarted_at = time.time()
    restarted = start_server(dsn, **settings)
    try:
        async with httpx.AsyncClient(base_url=restarted.url, timeout=30) as http:

            async def evaluated_since_restart() -> bool:
                rules = (await http.get("/v1/rules", params={"token": screen})).json()["rules"]
                return (rules[0]["last_evaluated_at"] or 0) > restarted_at + 1

            await wait_until(evaluated_since_restart, timeout=10)
            assert await ids(http) == [empty], "the resolved alert does not fire again"
            assert await ids(http, status="resolved") == [low]
            assert (await http.get("/v1/alerts/history", params={"token": screen})).json() == history
            assert await db.fetchval("SELECT count(*) FROM alerts") == 2
    finally:
        restarted.stop()
    assert [a.id for a in await store.recently_resolved(db, 600.0, 100)] == [low]
    assert await store.recently_resolved(db, 0.0, 100) == [], "nothing resolved in the last 0 s"
    assert [a.id for a in await store.recently_resolved(db, 0.0, 100, [low, empty])] == [low], (
        "an alert awaiting acknowledgment is listed however long ago it resolved; a firing one is not"
    )


async def test_silences_inhibition_and_rule_reload(dsn, tmp_path):
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "pack.yaml").write_text(STOCK_RULES)
    ingest, operator = await create_key(dsn, "ingest"), await create_key(dsn, "operator")
    server = start_server(
        dsn, WARROOM_RULES_DIR=str(rules_dir), WARROOM_CAMPAIGNS_DIR=str(live_campaigns(tmp_path / "campaigns"))
    )
    headers = {"X-API-Key": operator}
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            silence = await http.post(
                "/v1/silences",
                json={
                    "matchers": ["sku=SKU-1001", "rule=~stock_.*"],
                    "ends_at": tomorrow,
                    "reason": "planned price change at 00:00",
                },
                headers=headers,
            )
            assert silence.status_code == 201, silence.text
            bad = await http.post(
                "/v1/silences", json={"matchers": ["sku=~("], "ends_at": tomorrow, "reason": "x"}, headers=headers
            )
            assert bad.status_code == 422 and bad.json()["error"]["field"] == "matchers"
            await http.post("/v1/events", json={"events": [stock("s1", 100)]}, headers={"X-API-Key": ingest})

            async def silenced() -> bool:
                alerts = (await http.get("/v1/alerts", headers=headers)).json()
                return len(alerts) == 1 and alerts[0]["silenced_by"] == [silence.json()["id"]]

            await wait_until(silenced, timeout=5)
            assert (await http.delete(f"/v1/silences/{silence.json()['id']}", headers=headers)).status_code == 204
            assert (await http.get("/v1/silences", headers=headers)).json() == []

            rules = (await http.get("/v1/rules", headers=headers)).json()
            assert rules["rules"][0]["name"] == "stock_low" and rules["rules"][0]["firing"] == 1

            (rules_dir / "pack.yaml").write_text(STOCK_RULES.replace('op: "<="', 'op: "=<"'))
            refused = await http.post("/v1/rules/reload", headers=headers)
            assert (
                refused.status_code == 422
                and "pack.yaml:11:23: rules[0].conditions.emergency.op" in refused.json()["error"]["message"]
            )
            assert len((await http.get("/v1/alerts", headers=headers)).json()) == 1, "alert state kept"

            warning_only = STOCK_RULES.replace("stock_low", "stock_warning").replace(
                '      emergency: {op: "<=", value: 0}\n', ""
            )
            (rules_dir / "extra.yaml").write_text(warning_only)
            (rules_dir / "pack.yaml").write_text(STOCK_RULES)
            reloaded = await http.post("/v1/rules/reload", headers=headers)
            assert reloaded.json() == {"rules": 2}
            await http.post("/v1/events", json={"events": [stock("s2", 0)]}, headers={"X-API-Key": ingest})

            async def inhibited() -> bool:
                alerts = {a["rule"]: a for a in (await http.get("/v1/alerts", headers=headers)).json()}
                return (
                    set(alerts) == {"stock_low", "stock_warning"}
                    and alerts["stock_low"]["severity"] == "emergency"
                    and alerts["stock_warning"]["inhibited_by"] == [alerts["stock_low"]["id"]]
                    and alerts["stock_low"]["inhibited_by"] == []
                )

            await wait_until(inhibited, timeout=5)

            (rules_dir / "third.yaml").write_text(STOCK_RULES.replace("stock_low", "stock_third"))

            async def picked_up_without_a_request() -> bool:
                return len((await http.get("/v1/rules", headers=headers)).json()["rules"]) == 3

            await wait_until(picked_up_without_a_request, timeout=8)
    finally:
        server.stop()
