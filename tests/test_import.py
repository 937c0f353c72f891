"""``warroom import``: history files stored through the API's validation and group commit, idempotently."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from decimal import Decimal

from app.ingest.importer import BATCH_EVENTS, SHOWN_REJECTIONS
from tests.conftest import event
from tests.helpers import warroom, warroom_concurrently

UNREACHABLE_DATABASE = "postgresql://nobody@127.0.0.1:1/none"
"""Failures that must happen before the database is opened get this, so opening it would fail them."""
LAST_YEAR = "2025-11-11T00:00:03+08:00"
MANY = 2 * BATCH_EVENTS + 123
"""Enough valid lines for several batches in flight at once."""
INVALID = SHOWN_REJECTIONS + 3


async def test_jsonl_import_is_validated_like_the_api_and_idempotent(dsn, db, tmp_path):
    lines = [
        json.dumps(
            event(
                f"h-{n}",
                "order_paid",
                order_id=f"o-{n}",
                amount="12.30",
                occurred_at=LAST_YEAR,
                campaign="double11-2025",
            )
        )
        for n in range(MANY)
    ]
    lines.insert(5, json.dumps(event("h-1", "order_paid", amount="12.30")))  # ends up on line 8: repeats h-1
    lines.insert(2, "")  # ends up on line 4: blank, skipped
    lines.insert(1, '{"event_id": "broken", "type": "order_paid",')  # line 2: malformed JSON
    lines += [json.dumps({"event_id": f"bad-{n}", "type": "order_paid", "amount": 1}) for n in range(INVALID - 1)]
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {"DATABASE_URL": dsn}

    first = warroom("import", str(path), env=env)
    assert first.returncode == 0, first.stderr
    read = MANY + 1 + INVALID
    assert f"{read:,} read, {MANY:,} accepted, 1 duplicates, {INVALID} rejected" in first.stdout
    assert f"{path}:2: Input data was truncated" in first.stderr
    assert f"{path}:{MANY + 4}: order_id: required for order_paid events" in first.stderr
    assert first.stderr.count(f"{path}:") == SHOWN_REJECTIONS
    assert f"... and {INVALID - SHOWN_REJECTIONS} more rejections not shown" in first.stderr

    assert await db.fetchval("SELECT count(*) FROM events") == MANY
    stored = await db.fetchrow("SELECT occurred_at, campaign, amount, currency FROM events WHERE event_id = 'h-1'")
    assert stored["occurred_at"] == datetime.fromisoformat(LAST_YEAR)
    assert (stored["campaign"], stored["amount"], stored["currency"]) == ("double11-2025", Decimal("12.30"), "CNY")

    again = warroom("import", str(path), env=env)
    assert again.returncode == 0, again.stderr
    assert f"{read:,} read, 0 accepted, {MANY + 1:,} duplicates, {INVALID} rejected" in again.stdout
    assert await db.fetchval("SELECT count(*) FROM events") == MANY


async def test_csv_import_converts_cells_and_campaign_overrides_the_file(dsn, db, tmp_path):
    rows = [
        "event_id,type,occurred_at,campaign,user_id,order_id,sku,quantity,amount,metric,value,labels,props",
        f'c-1,order_paid,{LAST_YEAR},double11-demo,u-1,o-1,SKU-1,2,598.10,,,,"{{""coupon"": ""C-11""}}"',
        f"c-2,stock_level,{LAST_YEAR},,,,SKU-1,1200,,,,,",
        f'c-3,metric,{LAST_YEAR},,,,,,,ad_spend,1500.5,"{{""channel"": ""douyin""}}",',
        "c-4,stock_level,,,,,SKU-1,many,,,,,",
        "c-5,metric,,,,,,,,ad_spend,nan,,",
        "c-6,visit,,,,,,,,,,,",
        "c-7,visit,too,few",
        f"c-1,order_paid,{LAST_YEAR},,u-1,o-1,,,598.10,,,,",
    ]
    path = tmp_path / "history.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))

    result = warroom("import", str(path), "--campaign", "double11-2025", env={"DATABASE_URL": dsn})
    assert result.returncode == 0, result.stderr
    assert "8 read, 3 accepted, 1 duplicates, 4 rejected" in result.stdout
    for line, reason in [
        (5, "quantity: must be an integer, got 'many'"),
        (6, "value: must be a finite number"),
        (7, "user_id: visit needs user_id or anonymous_id"),
        (8, "the row has 4 cells, the header has 13"),
    ]:
        assert f"{path}:{line}: {reason}" in result.stderr

    stored = {r["event_id"]: r for r in await db.fetch("SELECT * FROM events ORDER BY event_id")}
    assert set(stored) == {"c-1", "c-2", "c-3"}
    assert {r["campaign"] for r in stored.values()} == {"double11-2025"}
    paid = stored["c-1"]
    assert (paid["quantity"], paid["amount"], json.loads(paid["props"])) == (2, Decimal("598.10"), {"coupon": "C-11"})
    assert paid["occurred_at"] == datetime.fromisoformat(LAST_YEAR) and paid["channel"] is None
    assert (stored["c-2"]["quantity"], stored["c-2"]["warehouse"]) == (1200, "default")
    assert (stored["c-3"]["value"], json.loads(stored["c-3"]["labels"])) == (1500.5, {"channel": "douyin"})


def test_unusable_files_and_arguments_fail_before_the_database_opens(tmp_path):
    notes = tmp_path / "history.txt"
    notes.write_text("{}\n", encoding="utf-8")
    header = tmp_path / "typo.csv"
    header.write_text("event_id,type,ammount\ne-1,order_paid,5\n", encoding="utf-8")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    unknown, bad_campaign, missing, typo, blank = warroom_concurrently(
        ("import", str(notes)),
        ("import", str(notes), "--format", "jsonl", "--campaign", "no spaces"),
        ("import", str(tmp_path / "nope.jsonl")),
        ("import", str(header)),
        ("import", str(empty)),
        env={"DATABASE_URL": UNREACHABLE_DATABASE},
    )
    assert unknown.returncode == 2 and "pass --format jsonl or --format csv" in unknown.stderr
    assert bad_campaign.returncode == 2 and "argument --campaign: 'no spaces'" in bad_campaign.stderr
    assert missing.returncode == 1 and "nope.jsonl: cannot read: No such file or directory" in missing.stderr
    assert typo.returncode == 1 and f"{header}:1: header: unknown column 'ammount'" in typo.stderr
    assert blank.returncode == 1 and f"warroom: {empty} holds no events" in blank.stderr
