"""Stored silences are read without the input limits: an upgrade never stops the server from starting.

Migration 0007 converted old text matchers as they were, so a silence an operator created before the
matcher limits existed (a 300-character alternation of SKUs, say) is stored structured but over
today's input limit. It still applies: the operator created it, and the limits are for new input.
A stored silence that cannot be read at all (an invalid regex, one the compiler cannot take) is skipped,
logged and counted once per process, though silences are re-read every few seconds.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from alerts.evaluation import live
from alerts.evaluation.silences import MAX_REGEX_LENGTH, Matcher, silencing
from app.core import telemetry
from tests.conftest import create_key, start_server, wait_until

LONG_REGEX = "|".join(f"SKU-{i:04d}" for i in range(40))
"""The kind of matcher an operator wrote before the limit: an alternation of SKUs, over 256 characters."""


async def _insert(db, silence_id: str, matchers: list[dict]) -> None:
    now = datetime.now(UTC)
    await db.execute(
        "INSERT INTO silences (id, matchers, starts_at, ends_at, reason, created_by)"
        " VALUES ($1, $2::jsonb, $3, $4, 'planned', 'ops')",
        silence_id,
        json.dumps(matchers),
        now - timedelta(minutes=1),
        now + timedelta(hours=1),
    )


def test_input_still_has_the_limits():
    assert len(LONG_REGEX) > MAX_REGEX_LENGTH
    with pytest.raises(ValueError, match="at most"):
        Matcher.parse(f"sku=~{LONG_REGEX}")
    with pytest.raises(ValueError, match="at most"):
        Matcher.checked("sku", "=", "x" * 1025)


async def test_an_over_long_stored_matcher_does_not_stop_the_start_and_still_applies(dsn, db, caplog):
    await _insert(db, "old-long", [{"name": "sku", "op": "=~", "value": LONG_REGEX}])
    await _insert(db, "broken", [{"name": "sku", "op": "=~", "value": "(unclosed"}])
    operator = await create_key(dsn, "operator")
    unreadable_before = telemetry.SILENCES_UNREADABLE._value.get()
    with caplog.at_level(logging.ERROR, logger="alerts.evaluation.store"):
        server = start_server(dsn)
    try:
        service = server.services.alerts
        assert [s.id for s in service.silences] == ["old-long"]
        now = time.time()
        assert silencing({"sku": "SKU-0039", "rule": "stock_low"}, service.silences, now) == ["old-long"]
        assert silencing({"sku": "SKU-0040", "rule": "stock_low"}, service.silences, now) == []
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            listed = await http.get("/v1/silences", headers={"X-API-Key": operator})
            assert listed.status_code == 200
            assert [s["matchers"] for s in listed.json()] == [[{"name": "sku", "op": "=~", "value": LONG_REGEX}]]
        assert any("broken" in r.getMessage() for r in caplog.records), "the unreadable silence is logged"
        assert telemetry.SILENCES_UNREADABLE._value.get() > unreadable_before
    finally:
        server.stop()


UNCOMPILABLE = {
    "nested": "(" * 5000 + ")" * 5000,  # the regex compiler recurses past Python's limit: RecursionError
    "huge-repeat": "a{4294967296}",  # OverflowError: msgspec passes on neither as a validation error
}


async def test_a_regex_that_breaks_the_compiler_is_skipped_and_the_server_starts(dsn, db, monkeypatch, caplog):
    for silence_id, regex in UNCOMPILABLE.items():
        await _insert(db, silence_id, [{"name": "sku", "op": "=~", "value": regex}])
    await _insert(db, "fine", [{"name": "sku", "op": "=", "value": "SKU-1"}])
    monkeypatch.setattr(live, "SILENCES_REFRESH_S", 0.05)
    unreadable_before = telemetry.SILENCES_UNREADABLE._value.get()
    with caplog.at_level(logging.ERROR, logger="alerts.evaluation.store"):
        server = start_server(dsn)
        try:
            service = server.services.alerts
            assert [s.id for s in service.silences] == ["fine"]
            refreshes = server.services.metrics.supervisor.loops[live.SILENCES_LOOP]
            started = refreshes.last_progress

            async def reread() -> bool:  # several refreshes, each reading the same unreadable rows
                return refreshes.last_progress - started >= 0.5

            await wait_until(reread, timeout=10)
        finally:
            server.stop()
    logged = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert sorted(m.split()[1] for m in logged) == sorted(UNCOMPILABLE), "each logged once, by id"
    assert telemetry.SILENCES_UNREADABLE._value.get() - unreadable_before == len(UNCOMPILABLE), "and counted once"


def test_a_regex_that_breaks_the_compiler_is_refused_as_input():
    for regex in UNCOMPILABLE.values():
        with pytest.raises(ValueError, match="invalid regex"):
            Matcher("sku", "=~", regex)
