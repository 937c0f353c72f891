"""A value PostgreSQL refuses rejects only the event that holds it, reported per item like a validation error.

Validation is meant to stop every such value at the door; when one slips through (here a CHECK
constraint the test's own database adds, which validation knows nothing about), the writer finds the
refused event(s) by committing the submission in parts, stores every other event, and the answer
names each refused one by its index in the request.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from app.ingest.group_commit import MAX_REFUSED_PER_SUBMISSION, search_exhausted
from tests.conftest import event
from tests.helpers import warroom

REFUSED_SKU = "REFUSE-ME"
CONSTRAINT = f"ALTER TABLE events ADD CONSTRAINT test_no_bad CHECK (sku <> '{REFUSED_SKU}')"


def cart(i: int, prefix: str = "b") -> dict:
    return event(f"{prefix}-{i}", "add_to_cart", user_id=f"u-{i}", sku=f"SKU-{i % 7}")


@pytest.mark.parametrize(
    "size, refused, invalid",
    [(50, [37], []), (150, [0, 88, 149], [5])],
    ids=["array insert", "copy, with an invalid event"],
)
async def test_a_refused_event_is_reported_per_item_and_the_rest_of_the_batch_is_stored(
    client, db, size, refused, invalid
):
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
            assert (
                "refused" in error["message"] and "test_no_bad" in error["message"] and "DETAIL" not in error["message"]
            ), error
    ids = {r["event_id"] for r in await db.fetch("SELECT event_id FROM events")}
    assert ids == {f"b-{i}" for i in range(size)} - {f"b-{i}" for i in [*invalid, *refused]}

    again = (await client.post("/v1/events", json={"events": events})).json()
    assert again["accepted"] == 0 and again["duplicates"] == stored
    assert [r["index"] for r in again["rejected"]] == sorted([*invalid, *refused]), "refused again, never a duplicate"


async def test_a_single_refused_event_is_422_and_a_segment_batch_reports_it_per_item(server, client, db, ingest_key):
    await db.execute(CONSTRAINT)
    single = await client.post("/v1/events", json=event("one", "add_to_cart", sku=REFUSED_SKU))
    assert single.status_code == 422 and single.json()["rejected"][0]["index"] == 0, single.text

    messages = [
        {
            "type": "track",
            "event": "Product Added",
            "messageId": f"m-{i}",
            "userId": "u-1",
            "properties": {"sku": REFUSED_SKU if i == 2 else "SKU-1", "quantity": 1},
        }
        for i in range(4)
    ]
    async with httpx.AsyncClient(base_url=server.url, auth=(ingest_key, ""), timeout=30) as http:
        batch = await http.post("/v1/batch", json={"batch": messages})
    assert batch.status_code == 200, batch.text
    assert batch.json()["accepted"] == 3 and [r["index"] for r in batch.json()["rejected"]] == [2]


async def test_an_import_stores_all_but_the_refused_event_and_names_it_by_its_line(dsn, db, tmp_path):
    await db.execute(CONSTRAINT)
    lines = [json.dumps(cart(i, "imp")) for i in range(30)]
    lines[12] = json.dumps({**cart(12, "imp"), "sku": REFUSED_SKU})
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = warroom("import", str(path), env={"DATABASE_URL": dsn})
    assert result.returncode == 0, result.stderr
    assert "30 read, 29 accepted, 0 duplicates, 1 rejected" in result.stdout
    assert f"{path}:13: event_id: imp-12: the database refused this event" in result.stderr, result.stderr
    assert "test_no_bad" in result.stderr
    assert await db.fetchval("SELECT count(*) FROM events") == 29


async def test_a_batch_refused_throughout_is_answered_in_bounded_time_and_statements(client, db):
    """Every event refused: the writer tries each row at most once, in one transaction, and refuses the
    rest of the submission per item once too many were refused. A statement trigger counts the INSERT
    and COPY statements on ``events`` in a sequence (which no rollback undoes)."""
    await db.execute(CONSTRAINT)
    await db.execute("CREATE SEQUENCE test_statements")
    await db.execute(
        "CREATE FUNCTION test_count() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "PERFORM nextval('test_statements'); RETURN NULL; END $$"
    )
    await db.execute(
        "CREATE TRIGGER test_count BEFORE INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION test_count()"
    )
    size = 2000
    events = [{**cart(i, "all"), "sku": REFUSED_SKU} for i in range(size)]
    started = time.monotonic()
    response = await client.post("/v1/events", json={"events": events})
    elapsed = time.monotonic() - started
    assert response.status_code == 202, response.status_code  # a batch is answered per item
    report = response.json()
    assert report["accepted"] == 0 and [r["index"] for r in report["rejected"]] == list(range(size)), report["accepted"]
    messages = [r["errors"][0]["message"] for r in report["rejected"]]
    assert "test_no_bad" in messages[0] and "too many" in messages[-1], (messages[0], messages[-1])
    statements = await db.fetchval("SELECT last_value FROM test_statements")
    assert elapsed < 5 and statements <= MAX_REFUSED_PER_SUBMISSION + 5, (elapsed, statements)
    assert await db.fetchval("SELECT count(*) FROM events") == 0


async def test_props_postgres_would_refuse_are_mended_or_rejected_before_any_commit(server, client, db, ingest_key):
    """A lone surrogate (a JavaScript SDK cut a string inside an emoji) becomes U+FFFD and the event is kept;
    a number jsonb cannot hold rejects only its event, naming props. Neither reaches the database."""
    lone = json.dumps(cart(0, "m"))[:-1] + ', "props": {"title": "deal \\ud83d", "\\udc00k": 1}}'
    tiny = json.dumps(cart(1, "m"))[:-1] + ', "props": {"rate": 1e-20000}}'
    body = f'{{"events": [{lone}, {tiny}, {json.dumps(cart(2, "m"))}]}}'
    response = await client.post("/v1/events", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 202, response.text
    report = response.json()
    assert report["accepted"] == 2 and [r["index"] for r in report["rejected"]] == [1], report
    [error] = report["rejected"][0]["errors"]
    assert error["field"] == "props" and "1e-20000" in error["message"], error
    props = json.loads(await db.fetchval("SELECT props::text FROM events WHERE event_id = 'm-0'"))
    assert props == {"title": "deal \ufffd", "\ufffdk": 1}

    segment = (
        '{"batch": [{"type": "track", "event": "Product Added", "messageId": "s-1", "userId": "u-1", '
        '"properties": {"sku": "SKU-1", "quantity": 1, "name": "cut \\ud83d"}}]}'
    )
    async with httpx.AsyncClient(base_url=server.url, auth=(ingest_key, ""), timeout=30) as http:
        batch = await http.post("/v1/batch", content=segment, headers={"Content-Type": "application/json"})
    assert batch.status_code == 200 and batch.json()["accepted"] == 1, batch.text
    stored = json.loads(await db.fetchval("SELECT props::text FROM events WHERE event_id = 's-1'"))
    assert stored["name"] == "cut \ufffd"


async def test_a_connection_lost_while_finding_refused_events_stores_nothing_and_answers_503(client, db):
    """The search runs in one transaction: losing the database in the middle of it (here a trigger ends its
    own backend on one event) rolls back what it wrote, and the whole request is 503, to be retried."""
    await db.execute(CONSTRAINT)
    await db.execute(
        "CREATE FUNCTION test_kill() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.sku = 'KILL-ME' THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN NEW; END $$"
    )
    await db.execute("CREATE TRIGGER test_kill BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION test_kill()")
    events = [cart(i, "k") for i in range(150)]
    events[10]["sku"], events[100]["sku"] = REFUSED_SKU, "KILL-ME"
    response = await client.post("/v1/events", json={"events": events})
    assert response.status_code == 503, response.text
    assert await db.fetchval("SELECT count(*) FROM events") == 0


def test_the_search_for_refused_events_stops_after_too_many_or_too_long():
    assert search_exhausted(refusals=0, now=1.0, deadline=5.0) is None
    assert "too many" in (search_exhausted(refusals=MAX_REFUSED_PER_SUBMISSION, now=1.0, deadline=5.0) or "")
    assert "too long" in (search_exhausted(refusals=1, now=6.0, deadline=5.0) or "")
