"""The warroom command as an operator runs it: keys, schema upgrade, configuration errors."""

import httpx

from tests.conftest import event
from tests.helpers import warroom


async def test_key_lifecycle_through_the_cli(dsn, server):
    env = {"DATABASE_URL": dsn}
    created = warroom("keys", "create", "--name", "shop-backend", "--scope", "ingest", env=env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("wr_") and " " not in key

    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}) as http:
        assert (await http.post("/v1/events", json=event("cli-1"))).status_code == 202

    listed = warroom("keys", "list", env=env)
    assert "shop-backend" in listed.stdout and "ingest" in listed.stdout
    assert key.split("_", 2)[2] not in listed.stdout

    duplicate = warroom("keys", "create", "--name", "shop-backend", "--scope", "ingest", env=env)
    assert duplicate.returncode != 0 and "already exists" in duplicate.stderr

    revoked = warroom("keys", "revoke", "shop-backend", env=env)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert "shop-backend" not in warroom("keys", "list", env=env).stdout
    assert "shop-backend" in warroom("keys", "list", "--all", env=env).stdout
    again = warroom("keys", "revoke", "shop-backend", env=env)
    assert again.returncode != 0 and "no active key" in again.stderr

    bad_scope = warroom("keys", "create", "--name", "x", "--scope", "admin", env=env)
    assert bad_scope.returncode == 2 and "invalid choice" in bad_scope.stderr


def test_db_upgrade_is_idempotent(dsn):
    for _ in range(2):
        result = warroom("db", "upgrade", env={"DATABASE_URL": dsn})
        assert result.returncode == 0, result.stderr
        assert "up to date" in result.stdout


def test_invalid_settings_name_the_variable():
    result = warroom("db", "upgrade", env={"WARROOM_PORT": "eighty", "DATABASE_URL": "mysql://nope"})
    assert result.returncode == 1
    assert "WARROOM_PORT='eighty'" in result.stderr and "valid integer" in result.stderr
    assert "DATABASE_URL='mysql://nope'" in result.stderr


async def test_prune_deletes_only_events_older_than_the_cut_off(dsn, db):
    await db.execute(
        "INSERT INTO events (event_id, type, occurred_at, received_at, campaign) "
        "SELECT 'old-' || n, 'visit', now(), now() - interval '40 days', 'c' FROM generate_series(1, 120) n"
    )
    await db.execute(
        "INSERT INTO events (event_id, type, occurred_at, received_at, campaign) "
        "SELECT 'new-' || n, 'visit', now(), now(), 'c' FROM generate_series(1, 30) n"
    )
    result = warroom("events", "prune", "--older-than-days", "30", env={"DATABASE_URL": dsn})
    assert result.returncode == 0, result.stderr
    assert "deleted 120 events" in result.stdout and "deleted 120 of at most 120" in result.stderr
    assert await db.fetchval("SELECT count(*) FROM events WHERE event_id LIKE 'new-%'") == 30
    assert await db.fetchval("SELECT count(*) FROM events") == 30


async def test_notify_prune_keeps_pending_and_recent_notifications(dsn, db):
    insert = (
        "INSERT INTO notifications (dedup_key, contact_point, url_id, lane, group_key, kind, severity, alert_ids,"
        " title, body, notify_type, status, created_at) VALUES ($1, 'duty', 'u', 'l', 'g', 'firing', 'warning', '{}',"
        " 't', 'b', 'info', $2, now() - make_interval(days => $3))"
    )
    for key, status, age_days in (
        ("old-sent", "delivered", 40),
        ("old-failed", "failed", 40),
        ("old-pending", "pending", 40),
        ("new-sent", "delivered", 1),
    ):
        await db.execute(insert, key, status, age_days)
    await db.execute(
        "INSERT INTO notification_attempts (notification_id, attempt, ok, duration_ms)"
        " SELECT id, 1, true, 1 FROM notifications"
    )
    await db.execute(
        "INSERT INTO notification_log (lane, receiver, group_key, told, sent_at, flushes) VALUES"
        " ('l', 'duty', 'idle', '{}', now() - interval '40 days', 3),"
        " ('l', 'duty', 'firing', '{\"a\": [0, \"warning\"]}',"
        " now() - interval '40 days', 1)"
    )
    result = warroom("notify", "prune", "--older-than-days", "30", env={"DATABASE_URL": dsn})
    assert result.returncode == 0, result.stderr
    assert "deleted 2 sent, failed or cancelled notifications and 1 idle group entries" in result.stdout
    assert sorted(r["dedup_key"] for r in await db.fetch("SELECT dedup_key FROM notifications")) == [
        "new-sent",
        "old-pending",
    ]
    assert await db.fetchval("SELECT count(*) FROM notification_attempts") == 2
    assert await db.fetchval("SELECT group_key FROM notification_log") == "firing"


def test_silences_from_the_cli(dsn):
    env = {"DATABASE_URL": dsn}
    added = warroom(
        "silences", "add", "sku=SKU-1001", "rule=~stock_.*", "--duration", "2h", "--reason", "price change", env=env
    )
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.split()[1]
    listed = warroom("silences", "list", env=env)
    assert (
        silence_id in listed.stdout
        and "sku=SKU-1001 rule=~stock_.*" in listed.stdout
        and "price change" in listed.stdout
    )
    assert warroom("silences", "expire", silence_id, env=env).returncode == 0
    assert silence_id not in warroom("silences", "list", env=env).stdout
    bad = warroom("silences", "add", "sku=~x(", "--reason", "x", env=env)
    assert bad.returncode == 1 and "invalid regex" in bad.stderr
