"""Small helpers shared by test files (a test file never imports another one)."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec
import pgserver._commands as pg_commands

from alerts.evaluation.evaluate import Evaluator
from alerts.evaluation.judgement import judge
from alerts.evaluation.lifecycle import Lifecycle, Transition
from alerts.evaluation.rules import load_directory as load_rules
from alerts.notify.delivery import DeliveryService
from alerts.notify.dispatch import Flush, GroupId, LogEntry, Notice
from app.campaigns import store
from app.campaigns.clock import REPLAY_LATENESS_S
from app.campaigns.model import Campaign, Phase, Phases, load_file
from app.core.database import EmbeddedPostgres
from app.drill.scenario import stamp
from app.drill.simulate import Drill, Night, baseline_of, scenarios
from app.ingest.events import COLUMNS, Defaults, decode_event
from app.metrics.engine import Engine
from app.metrics.measures import INDEX, Event
from app.metrics.snapshot import Snapshot

ROOT = Path(__file__).resolve().parent.parent
STOCK_RULES = """
rules:
  - name: stock_low
    kind: static
    metric: stock_on_hand
    by: sku
    panel: inventory
    summary: {en: "{sku}: {value} left ({severity})", zh: "{sku}：剩余 {value}（{severity}）"}
    runbook: {en: replenish now, zh: 立即补货}
    conditions:
      emergency: {op: "<=", value: 0}
      warning: {op: "<", value: safety_stock}
"""
"""A rule pack of one stock rule: warning under the SKU's safety stock, emergency at zero."""


def live_campaigns(directory: Path) -> Path:
    """A campaigns directory with the shipped ones, this year's moved so that its night is on now (its burst began
    an hour ago): only a night that is on is judged by the rules."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "campaigns").glob("*.yaml"):
        campaign = load_file(path)
        if campaign.id == "double11-demo":
            campaign = campaign.moved(datetime.now(UTC) - timedelta(hours=1))
        (directory / path.name).write_bytes(msgspec.json.encode(campaign))
    return directory


REHEARSED = "rehearsed-night"
"""The campaign ``rehearsed_night`` writes: last month's night, replayed by tests on its own clock."""
REHEARSED_ZONE = ZoneInfo("Asia/Shanghai")


def rehearsed_night(directory: Path) -> datetime:
    """Write into ``directory`` a campaign (``REHEARSED``, the demo's catalog) whose burst began at midnight in
    Shanghai about a month ago, and return that midnight. Events stamped with the night's own times plus a
    ``watermark`` (``night_stock``, ``watermark``) replay it: it then runs on that night's clock, a rehearsal."""
    directory.mkdir(parents=True, exist_ok=True)
    day = (datetime.now(REHEARSED_ZONE) - timedelta(days=30)).date()
    midnight = datetime.combine(day, time_of_day(), REHEARSED_ZONE)
    demo = load_file(ROOT / "campaigns" / "double11-demo.yaml").moved(midnight)
    night = msgspec.structs.replace(demo, id=REHEARSED, name="Rehearsed Night", name_zh="演练之夜", baseline=None)
    (directory / f"{REHEARSED}.yaml").write_bytes(msgspec.json.encode(night))
    return midnight


def night_stock(event_id: str, quantity: int, at: datetime, sku: str = "SKU-1001") -> dict:
    """A stock level of ``REHEARSED``'s SKU at the night's time ``at``."""
    return {
        "event_id": event_id,
        "type": "stock_level",
        "campaign": REHEARSED,
        "sku": sku,
        "quantity": quantity,
        "occurred_at": at.isoformat(),
    }


def watermark(event_id: str, at: datetime, campaign: str = REHEARSED) -> dict:
    """A replay's mark that it has sent everything of ``campaign`` up to the night's time ``at``."""
    return {"event_id": event_id, "type": "watermark", "campaign": campaign, "occurred_at": at.isoformat()}


def stock(event_id: str, quantity: int, sku: str = "SKU-1001") -> dict:
    """A stock level of the demo campaign's SKU (``STOCK_RULES`` turns it into alerts)."""
    return {"event_id": event_id, "type": "stock_level", "campaign": "double11-demo", "sku": sku, "quantity": quantity}


def warroom(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The ``warroom`` command as an operator runs it, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def warroom_concurrently(*calls: tuple[str, ...], env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands at the same time (each one starts a Python process), results in call order."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda args: warroom(*args, env=env), calls))


def wait_ready(
    url: str, timeout_s: float, alive: Callable[[], bool] = lambda: True, interval_s: float = 0.2
) -> httpx.Response | None:
    """Poll ``url``/readyz until it answers 200, ``timeout_s`` passes or ``alive()`` turns false; the last answer."""
    deadline = time.monotonic() + timeout_s
    ready = None
    while time.monotonic() < deadline and alive():
        try:
            ready = httpx.get(f"{url}/readyz", timeout=2)
            if ready.status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(interval_s)
    return ready


class FakeClock:
    """A clock tests move by hand (``clock.now += 1``): timing logic is checked without waiting."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class DispatchProbe:
    """Drives a running server's dispatch clock and records what the dispatcher decides at each look.

    "Nothing more is sent" is then shown without waiting: move the clock past every interval that could
    bring a message (``advance``) and check the dispatcher decided nothing. The senders only send what the
    dispatcher stored, so an empty decision and no pending notification mean nothing more can go out.
    """

    def __init__(self, delivery: DeliveryService) -> None:
        self.offset = 0.0
        self.looks: list[tuple[float, list[Flush]]] = []
        self._real_clock, plan = delivery.clock, delivery.dispatcher.plan

        def recorded(notices: list[Notice], log: Mapping[GroupId, LogEntry], now: float) -> tuple[list[Flush], Any]:
            flushes, wake = plan(notices, log, now)
            self.looks.append((now, flushes))
            return flushes, wake

        delivery.clock = lambda: self._real_clock() + self.offset
        delivery.dispatcher.plan = recorded  # type: ignore[method-assign]

    async def advance(self, seconds: float, timeout_s: float = 10.0) -> list[Flush]:
        """Move the clock ``seconds`` ahead and wait for the dispatch loop to look at that time (it looks at
        least every ``PLAN_EVERY_S``); the flushes decided from then on."""
        self.offset += seconds
        target, first = self._real_clock() + self.offset, len(self.looks)
        deadline = time.monotonic() + timeout_s
        while not any(now >= target for now, _ in self.looks[first:]):
            if time.monotonic() > deadline:
                raise TimeoutError("the dispatch loop did not look again")
            await asyncio.sleep(0.02)
        return [flush for _, flushes in self.looks[first:] for flush in flushes]


# Campaigns the engine counts (it counts only defined ones), and exactness against SQL.


def definition(campaign_id: str) -> Campaign:
    """A bare campaign: the engine counts only the events of defined campaigns."""
    start = datetime.now(UTC) - timedelta(hours=3)
    return Campaign(
        id=campaign_id,
        name=campaign_id,
        phases=Phases(
            preheat=Phase(start, start + timedelta(hours=1)),
            burst=Phase(start + timedelta(hours=1), start + timedelta(hours=4)),
            wrapup=Phase(start + timedelta(hours=4), start + timedelta(hours=5)),
        ),
    )


async def define(db, *campaign_ids: str) -> None:
    for campaign_id in campaign_ids:
        await store.save(db, definition(campaign_id))


COUNTED = {
    "visit": "visits",
    "page_view": "page_views",
    "product_view": "product_views",
    "checkout": "checkouts",
    "add_to_cart": "add_to_cart",
    "order_created": "orders_created",
    "order_paid": "orders_paid",
    "order_cancelled": "orders_cancelled",
    "refund": "refunds",
}
MONEY = {"order_created": "gmv_created", "order_paid": "gmv_paid", "refund": "refund_amount"}
UNITS = {"order_paid": "units_sold", "order_created": "units_ordered", "add_to_cart": "cart_units"}
GROUPED_SQL = (
    "SELECT campaign, {key} type, count(*) AS n, sum(amount) AS amount, sum(coalesce(quantity, 1)) AS units, "
    "sum(value) AS spend FROM events {where} GROUP BY campaign, {key} type"
)


def assert_totals(totals: list, row, where: tuple) -> None:
    """One dimension's engine totals against one SQL group of events of a single type."""
    if row["type"] in COUNTED:
        assert totals[INDEX[COUNTED[row["type"]]]] == row["n"], where
    if row["type"] in MONEY:
        assert totals[INDEX[MONEY[row["type"]]]] == row["amount"], where
    if row["type"] in UNITS:
        assert totals[INDEX[UNITS[row["type"]]]] == row["units"], where
    if row["type"] == "metric":
        assert abs(totals[INDEX["spend"]] - row["spend"]) < 1e-6, where


async def assert_matches_sql(engine, db) -> None:
    rows = await db.fetch(GROUPED_SQL.format(key="", where=""))
    assert rows
    for row in rows:
        assert_totals(engine.states[row["campaign"]].dims[""].totals, row, (row["campaign"], row["type"]))
    by_sku = await db.fetch(GROUPED_SQL.format(key="sku,", where="WHERE sku IS NOT NULL"))
    for row in by_sku:
        series = engine.states[row["campaign"]].dims[f"sku:{row['sku']}"]
        assert_totals(series.totals, row, (row["campaign"], row["sku"], row["type"]))
    for campaign in {row["campaign"] for row in rows}:
        sql_skus = {row["sku"] for row in by_sku if row["campaign"] == campaign}
        assert set(engine.states[campaign].keys("sku:")) == sql_skus, campaign
    by_channel = await db.fetch(
        "SELECT campaign, coalesce(channel, '(none)') AS channel, sum(amount) AS gmv FROM events "
        "WHERE type = 'order_paid' GROUP BY 1, 2"
    )
    for row in by_channel:
        assert engine.states[row["campaign"]].dims[f"channel:{row['channel']}"].totals[INDEX["gmv_paid"]] == row["gmv"]
    by_minute = await db.fetch(
        "SELECT campaign, (extract(epoch FROM date_trunc('minute', occurred_at)))::bigint / 60 AS minute,"
        " count(*) AS n "
        "FROM events WHERE type = 'order_paid' GROUP BY 1, 2"
    )
    for row in by_minute:
        assert engine.states[row["campaign"]].dims[""].minutes[row["minute"]][INDEX["orders_paid"]] == row["n"]
    uv = await db.fetch(
        "SELECT campaign, count(DISTINCT user_id) AS uv FROM events "
        "WHERE type IN ('visit','page_view','product_view','add_to_cart','checkout','order_created','order_paid')"
        " GROUP BY campaign"
    )
    for row in uv:
        assert engine.states[row["campaign"]].visitors[""].count() == row["uv"]


# Events in another currency, for the exchange-rate tests.


def currency_order(seq: int, type_: str, amount: str, currency: str | None) -> Event:
    return Event(
        seq,
        type_,
        datetime.now(UTC).timestamp(),
        "shop",
        None,
        f"u{seq}",
        None,
        f"o{seq}",
        None,
        None,
        Decimal(amount),
        None,
        None,
        None,
        None,
        currency,
    )


def shop_with_rates(**rates: str) -> Campaign:
    return msgspec.structs.replace(
        definition("shop"), currency="CNY", exchange_rates={code: Decimal(rate) for code, rate in rates.items()}
    )


ALIAS_BOMB = """id: c-1
a: &a ["x","x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
"""
"""283 bytes that expand to 10^5 nodes (x10 per extra line)."""


def stop_postgres(server: EmbeddedPostgres, mode: str = "fast") -> None:
    """Stop PostgreSQL: ``fast`` closes sessions cleanly; ``immediate`` kills it as a crash would (it
    recovers from its WAL at the next start)."""
    pg_commands.pg_ctl(["-m", mode, "-w", "stop"], pgdata=server.pgdata, user=server._server.system_user)


# The drill's night judged in simulated time: the pure engine, rules and lifecycle, no server and no wall clock.


EVENT_FIELDS = {name: i for i, name in enumerate(COLUMNS)}
ENGINE_FIELDS = Event._fields[4:]
"""The stored columns the engine reads after ``seq``, ``type``, ``occurred_at`` and ``campaign``."""


@dataclass
class NightRun:
    """What a night replayed in simulated time gave: every alert transition, and the snapshot of this year's
    campaign each time its clock stood at one of the asked moments."""

    transitions: list[Transition] = field(default_factory=list)
    snapshots: dict[float, Snapshot] = field(default_factory=dict)


def engine_events(raw: list[dict[str, Any]], seq: itertools.count) -> list[Event]:
    """Events as the server stores them (validated, amounts decoded) and the engine then reads them."""
    out = []
    for payload in raw:
        occurred = datetime.fromisoformat(payload["occurred_at"])
        row, errors = decode_event(msgspec.json.encode(payload), occurred + timedelta(seconds=1), Defaults("", "CNY"))
        assert row is not None, errors
        out.append(
            Event(next(seq), row[1], row[2].timestamp(), row[3], *(row[EVENT_FIELDS[name]] for name in ENGINE_FIELDS))
        )
    return out


def replay_night(drill: Drill, moments: Iterable[float] = (), evaluate_every_s: int = 5) -> NightRun:
    """``drill``'s night (its campaign file and the baseline's next to it, as shipped) judged in simulated time, as the
    server judges a replay: last year's history loaded first, then this year's night second by second, each second
    closed by a watermark, and every campaign evaluated every ``evaluate_every_s`` simulated seconds on its own clock
    by the rules of ``ROOT/rules``. Snapshots of this year's campaign are taken when its clock stands at ``moments``
    (epoch seconds)."""
    this_year = msgspec.structs.replace(load_file(drill.campaign_file), id=drill.campaign)
    last_year = baseline_of(this_year, drill.campaign_file.parent)
    engine = Engine([this_year, last_year])
    live, history = scenarios(drill, this_year)
    nights, seq = (Night.of(this_year), Night.of(last_year)), itertools.count(1)
    start_s, end_s = int(-drill.minutes_before * 60), int(drill.minutes_after * 60)
    for t in range(start_s, end_s):
        engine.apply(engine_events(stamp(history.step(t), last_year.id, nights[1].iso), seq))
    closing = int((last_year.end - nights[1].burst).total_seconds() + REPLAY_LATENESS_S)
    engine.apply(engine_events([nights[1].watermark(closing, history.id_prefix)], seq))
    rules = load_rules(ROOT / "rules")
    evaluator, lifecycle, run, wanted = Evaluator(rules.rules), Lifecycle(), NightRun(), set(moments)
    for t in range(start_s, end_s):
        raw = stamp(live.step(t), this_year.id, nights[0].iso) + [nights[0].watermark(t + 1, live.id_prefix)]
        engine.apply(engine_events(raw, seq))
        clock = engine.clock(this_year.id, 0.0)
        if clock.now in wanted:
            run.snapshots[clock.now] = engine.snapshot(this_year.id, 0.0)
        if t % evaluate_every_s:
            continue
        for campaign in sorted(engine.campaigns):
            run.transitions += judge(engine, campaign, 0.0, evaluator, lifecycle)[1]
    return run
