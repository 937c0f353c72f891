"""``warroom campaigns`` as an operator runs it: apply, list, show → apply round trip, delete, and the offline check."""

from __future__ import annotations

import glob
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.campaigns import model as campaigns
from app.campaigns import store
from app.cli.campaigns import to_yaml
from tests.conftest import RunningServer, create_key, wait_until
from tests.helpers import ROOT, warroom, warroom_concurrently

UNREACHABLE_DATABASE = "postgresql://nobody@127.0.0.1:1/none"
"""Commands that must not touch the database get this, so using it would fail them."""
SHIPPED = sorted(glob.glob(os.path.join(ROOT, "campaigns", "*.y*ml")))


def campaign_yaml(campaign_id: str, burst_start: datetime, baseline: str | None = None) -> str:
    """A small campaign whose burst starts at ``burst_start`` (pre-heat the day before, wrap-up after)."""
    day = timedelta(days=1)
    lines = [
        f"id: {campaign_id}",
        f"name: Drill {campaign_id}",
        "timezone: Asia/Shanghai",
        "phases:",
        f"  preheat: {{start: {(burst_start - day).isoformat()}, end: {burst_start.isoformat()}}}",
        f"  burst:   {{start: {burst_start.isoformat()}, end: {(burst_start + day).isoformat()}}}",
        f"  wrapup:  {{start: {(burst_start + day).isoformat()}, end: {(burst_start + 2 * day).isoformat()}}}",
        "targets: {gmv: 1000000.5, paid_orders: 2000}",
        *([f"baseline: {baseline}"] if baseline else []),
        "skus:",
        '  - {sku: SKU-1, name: "Phone: X1", name_zh: 手机, safety_stock: 10, warning_level: 20, price: 3999}',
        "  - {sku: SKU-2, name: Case}",
    ]
    return "\n".join(lines) + "\n"


async def stored(db: asyncpg.Connection) -> dict[str, campaigns.Campaign]:
    return {c.id: c for c in await store.fetch_all(db)}


@pytest.fixture
async def screen(dsn: str, server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to the running server with a screen key: what the wall display sees."""
    key = await create_key(dsn, "screen")
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as http:
        yield http


async def serves(http: httpx.AsyncClient, ids: set[str]) -> bool:
    response = await http.get("/v1/campaigns")
    assert response.status_code == 200, response.text
    return {c["id"] for c in response.json()} == ids


async def test_apply_list_show_round_trip_and_delete(dsn, db, screen, tmp_path):
    env = {"DATABASE_URL": dsn}
    now = datetime.now(timezone(timedelta(hours=8))).replace(microsecond=0)
    live = tmp_path / "live.yaml"
    live.write_text(campaign_yaml("drill-2026", now - timedelta(hours=1), baseline="drill-2025"), encoding="utf-8")
    last_year = tmp_path / "last-year.yaml"
    last_year.write_text(campaign_yaml("drill-2025", now - timedelta(days=365)), encoding="utf-8")

    applied = warroom("campaigns", "apply", str(live), str(last_year), env=env)
    assert applied.returncode == 0, applied.stderr
    assert f"created drill-2026 ({live})" in applied.stdout and f"created drill-2025 ({last_year})" in applied.stdout
    assert set(await stored(db)) == {"drill-2026", "drill-2025"}
    await wait_until(lambda: serves(screen, {"drill-2026", "drill-2025"}))  # the running server reloaded

    before = (await stored(db))["drill-2026"]
    listed, shown, *missing = warroom_concurrently(
        ("campaigns", "list"),
        ("campaigns", "show", "drill-2026"),
        ("campaigns", "show", "drill-2027"),
        ("campaigns", "delete", "drill-2027"),
        env=env,
    )
    for result in missing:
        assert result.returncode == 1 and "no campaign 'drill-2027'" in result.stderr
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "PHASE", "PREHEAT", "START", "BURST", "START", "BASELINE", "SKUS"]
    by_id = {row.split()[0]: row for row in rows}
    assert by_id["drill-2025"].split()[3:] == [
        "ended",
        (now - timedelta(days=366)).isoformat(timespec="minutes"),
        (now - timedelta(days=365)).isoformat(timespec="minutes"),
        "-",
        "2",
    ]
    assert by_id["drill-2026"].split()[3] == "burst" and by_id["drill-2026"].split()[-2:] == ["drill-2025", "2"]

    assert shown.returncode == 0, shown.stderr
    assert "name: 'Phone: X1'" in shown.stdout and "price: 3999" in shown.stdout and "null" not in shown.stdout
    round_trip = tmp_path / "shown.yaml"
    round_trip.write_text(shown.stdout, encoding="utf-8")
    reapplied = warroom("campaigns", "apply", str(round_trip), env=env)
    assert reapplied.returncode == 0, reapplied.stderr
    assert reapplied.stdout.strip() == f"updated drill-2026 ({round_trip})"
    assert (await stored(db))["drill-2026"] == before

    deleted = warroom("campaigns", "delete", "drill-2026", env=env)
    assert deleted.returncode == 0 and "deleted drill-2026" in deleted.stdout
    assert set(await stored(db)) == {"drill-2025"}
    await wait_until(lambda: serves(screen, {"drill-2025"}))


async def test_apply_with_an_invalid_file_names_the_line_and_applies_nothing(dsn, db, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(campaign_yaml("good", datetime(2026, 11, 11, tzinfo=UTC)), encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    text = campaign_yaml("bad", datetime(2026, 11, 11, tzinfo=UTC)).replace("safety_stock: 10", "safety_stock: -3")
    bad.write_text(text, encoding="utf-8")

    result = warroom(
        "campaigns", "apply", str(good), str(bad), str(tmp_path / "missing.yaml"), env={"DATABASE_URL": dsn}
    )
    assert result.returncode == 1
    assert f"{bad}:10:" in result.stderr and "skus[0].safety_stock: Expected `int` >= 0" in result.stderr
    assert f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory" in result.stderr
    assert "warroom: 2 invalid of 3 file(s); nothing was applied" in result.stderr
    assert await stored(db) == {}


def test_check_validates_without_a_database(tmp_path):
    env = {"DATABASE_URL": UNREACHABLE_DATABASE}
    good = tmp_path / "good.yaml"
    good.write_text(campaign_yaml("good", datetime(2026, 11, 11, tzinfo=UTC)), encoding="utf-8")
    twin = tmp_path / "twin.yaml"
    twin.write_text(good.read_text(encoding="utf-8"), encoding="utf-8")
    typo = tmp_path / "typo.yaml"
    typo.write_text(good.read_text(encoding="utf-8").replace("timezone:", "time_zone:").replace("id: good", "id: typo"))
    ok, failed = warroom_concurrently(
        ("campaigns", "check", str(good), *SHIPPED), ("campaigns", "check", str(good), str(twin), str(typo)), env=env
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0] == f"ok {good} (good)" and len(ok.stdout.splitlines()) == 1 + len(SHIPPED)
    assert failed.returncode == 1
    assert f"{twin}: id: 'good' is also defined in {good}" in failed.stderr
    assert f"{typo}:3:" in failed.stderr and "time_zone: unknown field" in failed.stderr
    assert "warroom: 2 invalid of 3 file(s)\n" in failed.stderr


def test_shown_yaml_parses_back_to_the_same_campaign():
    assert SHIPPED, "the repository ships campaign files"
    for path in SHIPPED:
        campaign = campaigns.load_file(Path(path))
        assert campaigns.parse(to_yaml(campaign)) == campaign, path
