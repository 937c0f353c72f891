"""POST /v1/events over real HTTP into the real database: what is stored, and every class of bad input."""

import gzip
import json
import re
from collections import Counter

import httpx
import pytest

from tests.conftest import create_key, event, start_server


async def count(db, where: str = "true") -> int:
    return await db.fetchval(f"SELECT count(*) FROM events WHERE {where}")


async def test_single_event_is_committed_before_the_answer(client, db):
    response = await client.post("/v1/events", json=event("pay-1", amount=598.5, channel="tmall"))
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    row = await db.fetchrow("SELECT * FROM events WHERE event_id = 'pay-1'")
    assert row["type"] == "order_paid" and str(row["amount"]) == "598.5" and row["channel"] == "tmall"
    assert row["campaign"] == "default" and row["currency"] == "CNY"


async def test_batch_stores_valid_events_and_reports_rejected_ones_by_index(client, db):
    batch = [
        event("b-1", "visit"),
        event("b-2", "order_paid", order_id=None),
        event("b-3", "stock_level", quantity=5, warehouse="wh-sh"),
        {"event_id": "b-4", "type": "bogus"},
        event("b-1", "visit"),
    ]
    response = await client.post("/v1/events", json={"events": batch})
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2 and body["duplicates"] == 1
    assert [r["index"] for r in body["rejected"]] == [1, 3]
    assert body["rejected"][0]["errors"][0]["field"] == "order_id"
    assert body["rejected"][1]["errors"][0]["field"] == "type"
    assert await count(db) == 2


async def test_batch_of_well_typed_events_reports_rule_violations_by_index(client, db):
    """No event fails the type check, so the whole body is decoded at once; the rules still name each item."""
    batch = [
        event("w-1", "visit"),
        event("w-2", "stock_level", quantity=-1),
        event("w-3", "order_paid", order_id=None),
        event("w-4", "add_to_cart", sku="S1", quantity=2),
    ]
    response = await client.post(
        "/v1/events",
        content=json.dumps({"events": batch}, separators=(",", ":")),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2 and body["duplicates"] == 0
    assert [(r["index"], r["errors"][0]["field"]) for r in body["rejected"]] == [(1, "quantity"), (2, "order_id")]
    assert await count(db, "event_id IN ('w-1', 'w-4')") == 2


async def test_invalid_single_event_is_422_with_the_same_report(client, db):
    response = await client.post("/v1/events", json=event("x-1", "stock_level", quantity=-3))
    assert response.status_code == 422
    assert response.json()["rejected"] == [
        {
            "index": 0,
            "errors": [{"field": "quantity", "message": "stock_level is the absolute on-hand count and must be >= 0"}],
        }
    ]
    assert await count(db) == 0


async def test_retry_is_reported_as_duplicate_and_stored_once(client, db):
    first = await client.post("/v1/events", json={"events": [event("r-1"), event("r-2")]})
    again = await client.post("/v1/events", json={"events": [event("r-1"), event("r-2"), event("r-3")]})
    assert first.json()["accepted"] == 2
    assert again.json() == {"accepted": 1, "duplicates": 2, "rejected": []}
    assert await count(db) == 3


async def test_gzip_body_is_accepted(client, db):
    body = gzip.compress(json.dumps({"events": [event(f"g-{i}", "visit") for i in range(100)]}).encode())
    response = await client.post(
        "/v1/events", content=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert response.status_code == 202 and response.json()["accepted"] == 100
    assert await count(db) == 100


async def test_malformed_json_is_400_and_says_where(client):
    response = await client.post(
        "/v1/events", content=b'{"events": [\n  {"event_id": "a",}\n]}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "line 2, column 20" in message and "trailing comma" in message


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"[1, 2]", 400, "must be a JSON object"),
        (b'{"events": {"a": 1}}', 422, "events must be an array"),
        (b'{"events": [], "extra": 1}', 422, "unknown field 'extra'"),
    ],
)
async def test_envelope_errors(client, body, status, fragment):
    response = await client.post("/v1/events", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert fragment in response.json()["error"]["message"]


async def test_body_over_the_limit_is_413(client):
    big = {"events": [event(f"big-{i}", props={"pad": "x" * 8000}) for i in range(700)]}
    response = await client.post("/v1/events", json=big)
    assert response.status_code == 413
    assert "limit" in response.json()["error"]["message"]


async def test_gzip_bomb_is_413(client):
    bomb = gzip.compress(b'{"events": [' + b" " * (6 * 1024 * 1024) + b"]}")
    response = await client.post(
        "/v1/events", content=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert "decompressed" in response.json()["error"]["message"]


async def test_too_many_events_is_413(client):
    response = await client.post("/v1/events", json={"events": [{"event_id": str(i)} for i in range(10_001)]})
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "events"


@pytest.mark.parametrize("content_type", ["text/csv", "application/x-www-form-urlencoded", None])
async def test_wrong_content_type_is_415(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/v1/events", content=json.dumps(event("c-1")).encode(), headers=headers)
    if content_type is None:
        response = await client.post("/v1/events", content=b"{}", headers={"Content-Type": ""})
    assert response.status_code == 415
    assert response.json()["error"]["field"] == "Content-Type"


async def test_unknown_content_encoding_is_415(client):
    response = await client.post(
        "/v1/events", content=b"{}", headers={"Content-Type": "application/json", "Content-Encoding": "br"}
    )
    assert response.status_code == 415


async def test_auth_missing_wrong_revoked_and_wrong_scope(dsn, db):
    """The key cache is off (``WARROOM_KEY_CACHE_S=0``), so the revocation shows on the next request; the cache's
    own lifetime is tested in test_key_checks.py."""
    server = start_server(dsn, WARROOM_KEY_CACHE_S=0)
    try:
        await _auth_checks(server, dsn, db)
    finally:
        server.stop()
    assert await count(db) == 1


async def _auth_checks(server, dsn, db) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        missing = await http.post("/v1/events", json=event("k-1"))
        assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = await http.post("/v1/events", json=event("k-1"), headers={"Authorization": "Bearer wr_nope_nope"})
        assert wrong.status_code == 401
        garbage = await http.post("/v1/events", json=event("k-1"), headers={"X-API-Key": "x" * 500})
        assert garbage.status_code == 401

        screen = await create_key(dsn, "screen")
        forbidden = await http.post("/v1/events", json=event("k-1"), headers={"Authorization": f"Bearer {screen}"})
        assert forbidden.status_code == 403 and "ingest" in forbidden.json()["error"]["message"]

        ingest = await create_key(dsn, "ingest", name="to-revoke")
        ok = await http.post("/v1/events", json=event("k-2"), headers={"X-API-Key": ingest})
        assert ok.status_code == 202
        await db.execute("UPDATE api_keys SET revoked_at = now() WHERE name = 'to-revoke'")
        revoked = await http.post("/v1/events", json=event("k-3"), headers={"X-API-Key": ingest})
        assert revoked.status_code == 401


async def test_keys_are_stored_hashed(dsn, db):
    token = await create_key(dsn, "ingest", name="hashed")
    row = await db.fetchrow("SELECT * FROM api_keys WHERE name = 'hashed'")
    secret = token.split("_", 2)[2]
    assert secret.encode() not in bytes(row["secret_sha256"])
    assert all(secret not in str(value) for value in row.values())


async def test_rate_limit_is_429_with_retry_after(server, dsn):
    key = await create_key(dsn, "ingest", rate_limit=2)
    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}) as http:
        statuses = [(await http.post("/v1/events", json=event(f"rl-{i}"))) for i in range(8)]
    assert [r.status_code for r in statuses[:4]] == [202] * 4
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, "the 2 req/s key was never limited"
    assert int(limited[0].headers["Retry-After"]) >= 1


async def test_unknown_path_is_404_json(client):
    response = await client.get("/v1/typo")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_openapi_publishes_the_event_schema_with_examples(client):
    spec = (await client.get("/openapi.json")).json()
    body = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["examples"]) >= {"order_paid", "stock_level", "metric", "batch"}
    event_schema = spec["components"]["schemas"]["EventIn"]
    assert "order_paid" in event_schema["properties"]["type"]["enum"]
    assert event_schema["additionalProperties"] is False


async def test_health_readiness_and_metrics(client, db, dsn):
    scraper = {"Authorization": f"Bearer {await create_key(dsn, 'metrics')}"}
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "migrations": "ok", "loops": "ok"}

    def counts(text: str) -> Counter:
        """events_total by (outcome, type); the counters are process-wide, so the test compares before and after."""
        return Counter(
            {
                match[:2]: float(match[2])
                for match in re.findall(r'warroom_events_total\{outcome="(\w+)",type="(\w+)"\} ([0-9.e+]+)', text)
            }
        )

    before = counts((await client.get("/metrics", headers=scraper)).text)
    await client.post(
        "/v1/events", json={"events": [event("m-1", "visit"), event("m-1", "visit"), {"event_id": "m-2"}]}
    )
    typed = [event("m-3", "visit"), {"event_id": "m-4", "type": "order_paid"}]  # decoded whole, m-4 fails the rules
    await client.post("/v1/events", json={"events": typed})
    untyped = [{"event_id": "m-5", "type": "teleport"}, {"event_id": "m-6", "type": "refund", "amount": "x"}]
    await client.post("/v1/events", json={"events": untyped})  # decoded item by item
    metrics = (await client.get("/metrics", headers=scraper)).text
    counts_after = counts(metrics)
    counts_after.subtract(before)
    assert +counts_after == {
        ("accepted", "visit"): 2,
        ("duplicate", "visit"): 1,
        ("rejected", "invalid"): 2,
        ("rejected", "order_paid"): 1,
        ("rejected", "refund"): 1,
    }, "no type or an unknown one: invalid"
    for name in (
        "warroom_ingest_group_events_bucket",
        "warroom_ingest_commit_seconds_bucket",
        "warroom_ingest_queue_events",
    ):
        assert name in metrics

    await db.execute("UPDATE alembic_version SET version_num = 'older'")
    stale = await client.get("/readyz")
    assert stale.status_code == 503 and "older" in stale.json()["checks"]["migrations"]


async def test_restart_keeps_idempotency(dsn, ingest_key, db):
    first = start_server(dsn)
    async with httpx.AsyncClient(base_url=first.url, headers={"X-API-Key": ingest_key}) as http:
        assert (await http.post("/v1/events", json=event("rs-1"))).json()["accepted"] == 1
    first.stop()
    second = start_server(dsn)
    try:
        async with httpx.AsyncClient(base_url=second.url, headers={"X-API-Key": ingest_key}) as http:
            again = await http.post("/v1/events", json={"events": [event("rs-1"), event("rs-2")]})
        assert again.json() == {"accepted": 1, "duplicates": 1, "rejected": []}
    finally:
        second.stop()
    assert await count(db) == 2


async def test_invalid_utf8_is_a_per_event_error_not_a_500(client, db):
    good = json.dumps(event("u-1")).encode()
    bad = b'{"event_id": "u-2\xff", "type": "visit", "anonymous_id": "a"}'
    response = await client.post(
        "/v1/events", content=b'{"events": [' + good + b"," + bad + b"]}", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202
    assert response.json()["accepted"] == 1 and "UTF-8" in response.json()["rejected"][0]["errors"][0]["message"]
    single = await client.post("/v1/events", content=bad, headers={"Content-Type": "application/json"})
    assert single.status_code in (400, 422) and "UTF-8" in single.text
    assert await count(db) == 1


async def test_small_and_large_groups_store_identical_rows(client, db):
    """Small groups are inserted from arrays, large ones COPied: every column must come out the same."""
    samples = [
        event("x", "order_paid", amount=598.5, currency="USD", channel="app", user_id="u-7", props={"coupon": "D11"}),
        event("x", "add_to_cart", quantity=3, sku="SKU-9", session_id="s-1", occurred_at="2026-11-11T00:00:03+08:00"),
        event("x", "metric", metric="ad_spend", value=12.25, labels={"network": "wechat"}),
        event("x", "stock_level", sku="SKU-9", quantity=40, warehouse="wh-1"),
    ]
    at = "2026-11-11T00:00:05+08:00"
    small = [{"occurred_at": at, **e, "event_id": f"small-{i}"} for i, e in enumerate(samples)]
    large = [{"occurred_at": at, **e, "event_id": f"large-{i}"} for i, e in enumerate(samples)]
    large += [event(f"pad-{i}", "visit") for i in range(150)]
    for batch in (small, large):
        response = await client.post("/v1/events", json={"events": batch})
        assert response.status_code == 202 and response.json()["accepted"] == len(batch)
    columns = (
        "type, occurred_at, campaign, channel, user_id, anonymous_id, session_id, order_id, sku, quantity, "
        "amount, currency, warehouse, metric, value, labels, props"
    )
    for i in range(len(samples)):
        small_row, large_row = [
            await db.fetchrow(f"SELECT {columns} FROM events WHERE event_id = $1", f"{size}-{i}")
            for size in ("small", "large")
        ]
        assert small_row == large_row


async def test_large_batch_with_some_stored_ids_reports_exact_duplicates(client, db):
    """A large group is COPied straight into events; an id already stored makes it fall back to staging."""
    first = await client.post("/v1/events", json={"events": [event(f"big-{i}", "visit") for i in range(150)]})
    assert first.json() == {"accepted": 150, "duplicates": 0, "rejected": []}
    overlapping = [event(f"big-{i}", "visit") for i in range(100, 250)]
    second = await client.post("/v1/events", json={"events": overlapping + overlapping[:10]})
    assert second.json() == {"accepted": 100, "duplicates": 60, "rejected": []}
    assert await count(db) == 250
    assert await db.fetchval("SELECT count(DISTINCT seq) FROM events") == 250
