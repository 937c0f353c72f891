"""Silence matchers are structured end to end: a label value is never re-read as an operator or a regex."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from alerts.evaluation.silences import MAX_REGEX_LENGTH, Matcher
from tests.conftest import create_key, start_server, wait_until
from tests.helpers import STOCK_RULES, live_campaigns, stock

TRICKY_SKU = "~.*"


def page_matchers(alert: dict) -> list[dict]:
    """What the on-call page's "Silence 1 h" button sends (app/api/static/oncall.js, silenceAlert)."""
    return [
        {"name": "rule", "op": "=", "value": alert["rule"]},
        *({"name": k, "op": "=", "value": str(v)} for k, v in alert["labels"].items()),
    ]


async def test_silencing_a_sku_named_like_a_regex_silences_only_that_sku(dsn, db, tmp_path):
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "pack.yaml").write_text(STOCK_RULES)
    env = {"WARROOM_RULES_DIR": str(rules_dir), "WARROOM_CAMPAIGNS_DIR": str(live_campaigns(tmp_path / "campaigns"))}
    ingest, operator = await create_key(dsn, "ingest"), await create_key(dsn, "operator")
    headers = {"X-API-Key": operator}
    server = start_server(dsn, **env)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            posted = await http.post(
                "/v1/events", json={"events": [stock("s1", 0, sku=TRICKY_SKU)]}, headers={"X-API-Key": ingest}
            )
            assert posted.json()["accepted"] == 1, posted.text

            async def alerts() -> dict[str, dict]:
                return {a["labels"]["sku"]: a for a in (await http.get("/v1/alerts", headers=headers)).json()}

            async def tricky_fired() -> bool:
                return TRICKY_SKU in await alerts()

            await wait_until(tricky_fired)
            ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
            silence = await http.post(
                "/v1/silences",
                json={
                    "matchers": page_matchers((await alerts())[TRICKY_SKU]),
                    "ends_at": ends,
                    "reason": "on-call page",
                },
                headers=headers,
            )
            assert silence.status_code == 201, silence.text
            assert {"name": "sku", "op": "=", "value": TRICKY_SKU} in silence.json()["matchers"]
            quoted = await http.post(
                "/v1/silences",
                json={"matchers": [f'sku="{TRICKY_SKU}"'], "ends_at": ends, "reason": "typed"},
                headers=headers,
            )
            assert quoted.json()["matchers"] == [{"name": "sku", "op": "=", "value": TRICKY_SKU}]
            await http.post("/v1/events", json={"events": [stock("s2", 0)]}, headers={"X-API-Key": ingest})

            async def real_sku_fired() -> bool:
                return "SKU-1001" in await alerts()

            await wait_until(real_sku_fired)
            assert (await alerts())["SKU-1001"]["silenced_by"] == []
            assert len((await alerts())[TRICKY_SKU]["silenced_by"]) == 2
            stored = [
                json.loads(r["matchers"]) for r in await db.fetch("SELECT matchers::text AS matchers FROM silences")
            ]
            assert all(isinstance(m, dict) and set(m) == {"name", "op", "value"} for row in stored for m in row)
        server.stop()
        server = start_server(dsn, **env)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            after = {a["labels"]["sku"]: a for a in (await http.get("/v1/alerts", headers=headers)).json()}
            assert after["SKU-1001"]["silenced_by"] == [] and len(after[TRICKY_SKU]["silenced_by"]) == 2
            listed = (await http.get("/v1/silences", headers=headers)).json()
            assert {"name": "sku", "op": "=", "value": TRICKY_SKU} in listed[0]["matchers"]
    finally:
        server.stop()


async def test_bad_matchers_are_refused_with_the_reason(dsn, server):
    operator = await create_key(dsn, "operator")
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    async with httpx.AsyncClient(base_url=server.url, timeout=30, headers={"X-API-Key": operator}) as http:
        for matcher, why in (
            ({"name": "sku", "op": "=~", "value": "x" * (MAX_REGEX_LENGTH + 1)}, "at most"),
            ({"name": "sku", "op": "=~", "value": "("}, "invalid regex"),
            ("sku=~(", "invalid regex"),
        ):
            refused = await http.post("/v1/silences", json={"matchers": [matcher], "ends_at": ends, "reason": "x"})
            assert refused.status_code == 422 and refused.json()["error"]["field"] == "matchers", refused.text
            assert why in refused.json()["error"]["message"]
        unknown_op = await http.post(
            "/v1/silences",
            json={"matchers": [{"name": "sku", "op": "~", "value": "x"}], "ends_at": ends, "reason": "x"},
        )
        assert unknown_op.status_code == 422


@pytest.mark.parametrize("text", ['sku="~.*"', "sku=~.*", 'sku=" padded "', "rule!~stock_.*", 'sku=""'])
def test_the_text_form_round_trips(text):
    matcher = Matcher.parse(text)
    assert Matcher.parse(str(matcher)) == matcher


def test_regexes_are_anchored():
    assert not Matcher("sku", "=~", "SKU-1").matches({"sku": "SKU-10"})
    assert Matcher("sku", "=~", "SKU-1|SKU-2").matches({"sku": "SKU-2"})


async def test_the_migration_turns_stored_text_matchers_into_structured_ones(dsn, db):
    from alembic import command

    from app.core.database import _alembic_config

    await asyncio.to_thread(command.downgrade, _alembic_config(dsn), "0006")
    await db.execute(
        "INSERT INTO silences (id, matchers, starts_at, ends_at, reason, created_by)"
        " VALUES ('old', $1::jsonb, now(), now() + interval '1 hour', 'before 0007', 'cli')",
        json.dumps(["sku=SKU-1001", "rule=~stock_.*", 'channel!="tmall"']),
    )
    await asyncio.to_thread(command.upgrade, _alembic_config(dsn), "head")
    assert json.loads(await db.fetchval("SELECT matchers::text FROM silences WHERE id = 'old'")) == [
        {"name": "sku", "op": "=", "value": "SKU-1001"},
        {"name": "rule", "op": "=~", "value": "stock_.*"},
        {"name": "channel", "op": "!=", "value": "tmall"},
    ]
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(
            "INSERT INTO silences (id, matchers, starts_at, ends_at, reason, created_by)"
            " VALUES ('text', '[\"sku=x\"]', now(), now() + interval '1 hour', 'x', 'x')"
        )


def test_the_cli_takes_the_typed_form_once_and_lists_what_it_stored(dsn):
    from tests.helpers import warroom

    env = {"DATABASE_URL": dsn}
    added = warroom("silences", "add", 'sku="~.*"', "rule=~stock_.*", "--reason", "odd sku", env=env)
    assert added.returncode == 0, added.stderr
    listed = warroom("silences", "list", env=env).stdout
    assert 'sku="~.*" rule=~stock_.*' in listed, listed
