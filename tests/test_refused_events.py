"""A value PostgreSQL refuses rejects only the event that holds it, reported per item like a validation error.

Validation is meant to stop every such value at the door; when one slips through (here a CHECK
constraint the test's own database adds, which validation knows nothing about), the writer finds the
refused event(s) by committing the submission in parts, stores every other event, and the answer
names each refused one by its index in the request.
"""

from __future__ import annotations

import json

import asyncpg
import httpx
import pytest

from app.ingest import bisect_refused

from tests.conftest import event
from tests.test_cli import warroom

REFUSED_SKU = "REFUSE-ME"
CONSTRAINT = f"ALTER TABLE events ADD CONSTRAINT test_no_bad CHECK (sku <> '{REFUSED_SKU}')"


def cart(i: int, prefix: str = "b") -> dict:
    return event(f"{prefix}-{i}", "add_to_cart", user_id=f"u-{i}", sku=f"SKU-{i % 7}")


@pytest.mark.parametrize(
    "size, refused, invalid", [(50, [37], []), (150, [0, 88, 149], [5])], ids=["array insert", "copy, with an invalid event"]
)
async def test_a_refused_event_is_reported_per_item_and_the_rest_of_the_batch_is_stored(client, db, size, refused, invalid):
    await db.execute(CONSTRAINT)
    events = [cart(i) for i in range(size)]
    for i in refused:
        events[i]["sku"] = REFUSED_SKU
    for i in invalid:
        del events[i]["sku"]  # a validation error: both kinds are reported alike, by index
    response = await client.post("/v1/events", json={"events": events})
    assert response.status_code == 202, response.text
    report = response.json()
    stored = size - len(refused) - len(invalid)
    assert report["accepted"] == stored and report["duplicates"] == 0
    assert [r["index"] for r in report["rejected"]] == sorted([*invalid, *refused])
    for rejection in report["rejected"]:
        if rejection["index"] in refused:
            [error] = rejection["errors"]
            assert "refused" in error["message"] and "test_no_bad" in error["message"] and "DETAIL" not in error["message"], error
    ids = {r["event_id"] for r in await db.fetch("SELECT event_id FROM events")}
    assert ids == {f"b-{i}" for i in range(size)} - {f"b-{i}" for i in [*invalid, *refused]}

    again = (await client.post("/v1/events", json={"events": events})).json()
    assert again["accepted"] == 0 and again["duplicates"] == stored
    assert [r["index"] for r in again["rejected"]] == sorted([*invalid, *refused]), "refused again, never a duplicate"


async def test_a_single_refused_event_is_422_and_a_segment_batch_reports_it_per_item(server, client, db, ingest_key):
    await db.execute(CONSTRAINT)
    single = await client.post("/v1/events", json=event("one", "add_to_cart", sku=REFUSED_SKU))
    assert single.status_code == 422 and single.json()["rejected"][0]["index"] == 0, single.text

    messages = [{"type": "track", "event": "Product Added", "messageId": f"m-{i}", "userId": "u-1",
                 "properties": {"sku": REFUSED_SKU if i == 2 else "SKU-1", "quantity": 1}} for i in range(4)]
    async with httpx.AsyncClient(base_url=server.url, auth=(ingest_key, ""), timeout=30) as http:
        batch = await http.post("/v1/batch", json={"batch": messages})
    assert batch.status_code == 200, batch.text
    assert batch.json()["accepted"] == 3 and [r["index"] for r in batch.json()["rejected"]] == [2]


async def test_an_import_stores_all_but_the_refused_event_and_names_it(dsn, db, tmp_path):
    await db.execute(CONSTRAINT)
    lines = [json.dumps(cart(i, "imp")) for i in range(30)]
    lines[12] = json.dumps({**cart(12, "imp"), "sku": REFUSED_SKU})
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = warroom("import", str(path), env={"DATABASE_URL": dsn})
    assert result.returncode == 0, result.stderr
    assert "30 read, 29 accepted, 0 duplicates, 1 rejected" in result.stdout
    assert "event_id: imp-12: the database refused this event" in result.stderr and "test_no_bad" in result.stderr
    assert await db.fetchval("SELECT count(*) FROM events") == 29


def _refusing(bad: set[str], outage_after: int | None = None):
    """An ``insert`` that refuses any part holding a ``bad`` event_id (as PostgreSQL does: the whole part),
    and after ``outage_after`` calls loses the connection."""
    calls: list[int] = []

    async def insert(rows: list) -> set[str]:
        calls.append(len(rows))
        if outage_after is not None and len(calls) > outage_after:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        if bad & {row[0] for row in rows}:
            raise asyncpg.CheckViolationError('new row for relation "events" violates check constraint "test_no_bad"')
        return {row[0] for row in rows}

    return insert, calls


async def test_bisection_pins_refusals_in_few_commits_and_never_on_an_outage():
    rows = [(f"e-{i}",) for i in range(1000)]
    insert, calls = _refusing({"e-417"})
    stored, refused = await bisect_refused(rows, insert)
    assert stored == {f"e-{i}" for i in range(1000)} - {"e-417"} and list(refused) == ["e-417"]
    assert "test_no_bad" in refused["e-417"] and len(calls) <= 2 * 10 + 1, calls

    insert, calls = _refusing({"e-417"}, outage_after=3)
    with pytest.raises(asyncpg.ConnectionDoesNotExistError):  # the whole submission is then 503, nothing pinned
        await bisect_refused(rows, insert)
