"""``warroom rehearse``: a stored night replayed into a campaign of its own, through the real server and in-process.

One short stored night (six minutes after midnight, 2025) with two stock incidents: SKU-A runs below its safety
stock, sells out and is restocked (warning, emergency, resolved); SKU-B falls below its safety stock near the end
(a warning still firing when the night ends). It is rehearsed through the server at 40x and in-process with the
same rules, and the two tables are compared with each other and with what the server stored; then rehearsed again
with ``--replace``. The refusals, Ctrl-C, the watermarks of a replay behind its pace and the table's time zone
are checked too.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import httpx
import msgspec
import pytest

from alerts.evaluation.rehearsal import STILL_FIRING, NightAlert, night_time, table
from alerts.evaluation.severity import Severity
from app import cli
from app.campaigns import store
from app.campaigns.model import Campaign, Phase, Phases, Sku
from app.cli import rehearse as rehearse_command
from app.cli.rehearse import INTERRUPTED
from tests.conftest import RunningServer, create_key, start_server, wait_until
from tests.helpers import ROOT, STOCK_RULES, warroom

SOURCE, TARGET = "night-2025", "rehearsal-2025"
CST = timezone(timedelta(hours=8))
MIDNIGHT = datetime(2025, 11, 11, tzinfo=CST)
NIGHT_S = 360
SPEED = "40"
"""Six minutes of the night in nine seconds: the server evaluates every 0.2 s or so (every 8 s of the night), well
within the minute the two runs may differ by even on a loaded machine."""
TOLERANCE_S = 60.0
EXPECTED = {
    ("stock_low", "sku=SKU-A"): ("emergency", 102, 240),
    ("stock_low", "sku=SKU-B"): ("warning", 315, None),
}
"""Per alert: highest severity, and the seconds after midnight it fires and resolves (None: still firing).
SKU-A (60 on hand, safety 10) sells one every 2 s until it is gone at 00:02:00 and is restocked at 00:04:00;
SKU-B (30 on hand) sells one every 15 s and drops under 10 at 00:05:15."""


def night() -> Campaign:
    return Campaign(
        id=SOURCE,
        name="Double 11, 2025",
        timezone="Asia/Shanghai",
        phases=Phases(
            preheat=Phase(MIDNIGHT - timedelta(hours=1), MIDNIGHT),
            burst=Phase(MIDNIGHT, MIDNIGHT + timedelta(hours=24)),
            wrapup=Phase(MIDNIGHT + timedelta(hours=24), MIDNIGHT + timedelta(hours=48)),
        ),
        skus=[
            Sku(sku="SKU-A", name="A", safety_stock=10, warning_level=10),
            Sku(sku="SKU-B", name="B", safety_stock=10, warning_level=10),
        ],
    )


def at(second: int) -> str:
    return (MIDNIGHT + timedelta(seconds=second)).isoformat()


def night_events() -> list[dict]:
    events: list[dict] = [
        {"event_id": "stock-a-0", "type": "stock_level", "sku": "SKU-A", "quantity": 60, "occurred_at": at(0)},
        {"event_id": "stock-b-0", "type": "stock_level", "sku": "SKU-B", "quantity": 30, "occurred_at": at(0)},
        {"event_id": "stock-a-240", "type": "stock_level", "sku": "SKU-A", "quantity": 100, "occurred_at": at(240)},
    ]
    for second in range(NIGHT_S + 1):
        events.append(
            {"event_id": f"v-{second}", "type": "visit", "anonymous_id": f"a{second}", "occurred_at": at(second)}
        )
        sales = [("SKU-A", second % 2 == 0 and 0 < second <= 120), ("SKU-B", second % 15 == 0 and second > 0)]
        for sku, sells in sales:
            if sells:
                events.append(
                    {
                        "event_id": f"o-{sku}-{second}",
                        "type": "order_paid",
                        "order_id": f"o-{sku}-{second}",
                        "sku": sku,
                        "quantity": 1,
                        "amount": 100,
                        "occurred_at": at(second),
                    }
                )
    return [{**e, "campaign": SOURCE} for e in events]


def parse(stdout: str) -> dict[tuple[str, str], tuple[str, str, str]]:
    """The printed table: (rule, labels) -> (severity, fired, resolved)."""
    lines = stdout.strip().splitlines()
    assert lines[0].split() == ["RULE", "LABELS", "SEVERITY", "FIRED", "RESOLVED"], stdout
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]
    return {(rule, labels): (severity, fired, resolved) for rule, labels, severity, fired, resolved in rows}


def moment(text: str) -> float | None:
    return None if text == STILL_FIRING else datetime.strptime(text + "00", "%Y-%m-%d %H:%M:%S %z").timestamp()


def close(a: str, b: float | None) -> bool:
    left = moment(a)
    return (left is None and b is None) or (left is not None and b is not None and abs(left - b) <= TOLERANCE_S)


@pytest.fixture
async def stored(dsn, db, tmp_path):
    """The stored night on a running server whose rules are ``STOCK_RULES``; (server, rules dir, env, ingest key)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "stock.yaml").write_text(STOCK_RULES)
    running = start_server(dsn, WARROOM_RULES_DIR=rules)
    key = await create_key(dsn, "ingest")
    await store.save(db, night())
    await store.save(db, Campaign(id="empty-2025", name="empty", phases=night().phases))
    async with httpx.AsyncClient(base_url=running.url, headers={"Authorization": f"Bearer {key}"}) as http:
        response = await http.post("/v1/events", json={"events": night_events()})
        assert response.status_code == 202 and not response.json()["rejected"], response.text
    env = {"DATABASE_URL": dsn, "WARROOM_LOG_LEVEL": "warning"}
    yield running, rules, env, key
    running.stop()


async def server_table(running: RunningServer, dsn: str) -> dict[tuple[str, str], tuple[str, float, float | None]]:
    """The server's alerts of the rehearsal, from its API: (rule, labels) -> (highest severity, fired, resolved)."""
    screen = await create_key(dsn, "screen")
    async with httpx.AsyncClient(base_url=running.url, headers={"Authorization": f"Bearer {screen}"}) as http:
        alerts = (await http.get("/v1/alerts", params={"status": "all", "campaign": TARGET})).json()
        history = (await http.get("/v1/alerts/history")).json()
    ranks = {"reminder": 0, "warning": 1, "emergency": 2}
    out = {}
    for alert in alerts:
        assert alert["labels"]["rehearsal"] == "true", "a rehearsal's alerts are marked as such"
        severities = [t["severity"] for t in history if t["alert_id"] == alert["id"]]
        labels = " ".join(f"{k}={v}" for k, v in sorted(alert["labels"].items()) if k not in ("campaign", "rehearsal"))
        resolved = alert["resolved_at"]
        out[(alert["rule"], labels)] = (
            max(severities, key=ranks.__getitem__),
            datetime.fromisoformat(alert["fired_at"]).timestamp(),
            datetime.fromisoformat(resolved).timestamp() if resolved else None,
        )
    return out


def rehearse(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return warroom("rehearse", "--from", SOURCE, "--as", TARGET, *args, env=env)


async def test_a_rehearsal_on_the_server_matches_its_stored_alerts_and_the_in_process_run(stored, dsn, db):
    running, rules, env, key = stored
    on_server = rehearse("--url", running.url, "--key", key, "--speed", SPEED, env=env)
    assert on_server.returncode == 0, on_server.stderr
    assert "rehearsing night-2025 as rehearsal-2025" in on_server.stderr and "events/s" in on_server.stderr
    printed = parse(on_server.stdout)

    stored_alerts = await server_table(running, dsn)
    assert set(printed) == set(stored_alerts) == set(EXPECTED), (on_server.stdout, stored_alerts)
    zone = night().timezone
    for key_, (severity, fired, resolved) in stored_alerts.items():
        assert printed[key_] == (
            severity,
            night_time(fired, zone),
            night_time(resolved, zone) if resolved is not None else STILL_FIRING,
        ), "the table is what the server stored, in the night's time"
        expected_severity, fires_s, resolves_s = EXPECTED[key_]
        assert severity == expected_severity
        assert close(printed[key_][1], MIDNIGHT.timestamp() + fires_s), (key_, printed[key_])
        assert close(printed[key_][2], None if resolves_s is None else MIDNIGHT.timestamp() + resolves_s)

    in_process = rehearse("--rules", str(rules), env=env)
    assert in_process.returncode == 0, in_process.stderr
    judged_here = parse(in_process.stdout)
    assert set(judged_here) == set(printed)
    for key_, (severity, fired, resolved) in judged_here.items():
        assert severity == printed[key_][0], key_
        assert close(fired, moment(printed[key_][1])) and close(resolved, moment(printed[key_][2])), (
            key_,
            judged_here[key_],
            printed[key_],
        )

    snapshot_key = await create_key(dsn, "screen")
    async with httpx.AsyncClient(base_url=running.url, headers={"Authorization": f"Bearer {snapshot_key}"}) as http:
        snapshot = (await http.get(f"/v1/campaigns/{TARGET}/snapshot")).json()
        assert snapshot["clock"] == "replay" and snapshot["events"] > len(night_events()), "the night, and watermarks"
        assert snapshot["totals"]["orders_paid"] == sum(e["type"] == "order_paid" for e in night_events())
        source_alerts = (await http.get("/v1/alerts", params={"status": "all", "campaign": SOURCE})).json()
        assert source_alerts == [], "the stored night itself, on the wall clock, is long over: never judged"
    assert await db.fetchval("SELECT count(*) FROM api_keys WHERE name LIKE 'rehearse-%' AND revoked_at IS NULL") == 0

    again = rehearse("--url", running.url, "--key", key, env=env)
    assert again.returncode == 1 and "already has events: add --replace" in again.stderr, again.stderr
    replaced = rehearse("--url", running.url, "--key", key, "--speed", SPEED, "--replace", env=env)
    assert replaced.returncode == 0, replaced.stderr
    assert "replace: deleted" in replaced.stderr
    rerun = parse(replaced.stdout)
    assert set(rerun) == set(printed) == set(await server_table(running, dsn)), "the earlier run's alerts are gone"
    for key_, (severity, fired, resolved) in rerun.items():
        assert severity == printed[key_][0]
        assert close(fired, moment(printed[key_][1])) and close(resolved, moment(printed[key_][2]))


async def test_refusals_say_what_is_wrong_before_anything_changes(stored, db, dsn, monkeypatch, capsys):
    running, rules, env, key = stored
    monkeypatch.setenv("DATABASE_URL", dsn)
    url = ("--url", running.url, "--key", key)

    async def refusal(source: str, target: str, *options: str) -> str:
        """The last line ``warroom rehearse`` says as it refuses (the command runs in a thread: it runs its own
        event loop)."""
        with pytest.raises(SystemExit) as refused:
            await asyncio.to_thread(cli.main, ["rehearse", "--from", source, "--as", target, *options])
        assert refused.value.code != 0
        said = refused.value.code if isinstance(refused.value.code, str) else capsys.readouterr().err
        return said.strip().splitlines()[-1]

    unknown, empty = await refusal("nosuch", TARGET, *url), await refusal("empty-2025", TARGET, *url)
    assert unknown == "warroom: no campaign 'nosuch' is stored (see warroom campaigns list)"
    assert empty == "warroom: campaign 'empty-2025' has no stored events to rehearse"
    assert await refusal(SOURCE, SOURCE, *url) == (
        "warroom: --as must name a campaign of its own, not the stored night itself"
    )
    for speed in ("0", "-1", "nan", "fast"):
        assert (await refusal(SOURCE, TARGET, *url, "--speed", speed)).endswith(
            f"argument --speed: must be seconds of the night per real second, above 0; got {speed}"
        )
    bad_key = await refusal(SOURCE, TARGET, "--url", running.url, "--key", "wr_000000000000_not-a-key")
    assert bad_key.startswith(f"warroom: the war-room at {running.url} refused the ingest key: "), bad_key
    assert "needs --url and --key" in await refusal(SOURCE, TARGET)
    assert "do not apply" in await refusal(SOURCE, TARGET, "--rules", str(rules), *url)
    await store.save(db, msgspec.structs.replace(night(), id="double11-2026", baseline=TARGET))
    assert "is the baseline of double11-2026" in await refusal(SOURCE, TARGET, *url)
    assert await store.fetch(db, TARGET) is None, "nothing was defined"
    assert await db.fetchval("SELECT count(*) FROM events WHERE campaign = $1", TARGET) == 0


async def test_ctrl_c_stops_cleanly_and_says_where_the_night_got_to(stored, db):
    running, rules, env, key = stored
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "app.cli", "rehearse", "--from", SOURCE, "--as", TARGET),
        *("--url", running.url, "--key", key, "--speed", "5"),
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )

    async def sending() -> bool:
        assert process.returncode is None, await process.communicate()
        return await db.fetchval("SELECT count(*) > 50 FROM events WHERE campaign = $1", TARGET)

    await wait_until(sending, timeout=60, interval=0.1)
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    stderr = err.decode()
    assert process.returncode == INTERRUPTED, stderr
    assert "warroom: rehearsal stopped at 2025-11-11 00:" in stderr and "--replace to start over" in stderr, stderr
    assert "Traceback" not in stderr and out == b""
    assert await db.fetchval("SELECT count(*) FROM api_keys WHERE name LIKE 'rehearse-%' AND revoked_at IS NULL") == 0


class RecordingPoster:
    """Takes the batches ``_paced`` posts, as the server would, without a server."""

    def __init__(self) -> None:
        self.batches: list[list[dict]] = []

    async def post(self, events: list[dict]) -> dict:
        self.batches.append(events)
        return {"accepted": len(events), "duplicates": 0, "rejected": []}


async def test_every_batch_ends_with_a_watermark_that_no_later_event_precedes(monkeypatch):
    """A replay far behind its pace (full batches, several at one moment of the night) still moves the clock
    with each batch, never past an event not yet sent, and sends every event once."""
    monkeypatch.setattr(rehearse_command, "BATCH_EVENTS", 7)
    moments = [MIDNIGHT + timedelta(seconds=s // 10) for s in range(100)]  # ten events a second
    columns = dict.fromkeys((*rehearse_command.POSTED_COLUMNS, *rehearse_command.JSON_COLUMNS))
    rows = [{**columns, "event_id": f"e{i}", "type": "visit", "occurred_at": m} for i, m in enumerate(moments)]

    async def stored() -> AsyncIterator[dict]:
        for row in rows:
            yield row

    target = msgspec.structs.replace(night(), id=TARGET)
    first, last = moments[0].timestamp(), moments[-1].timestamp()
    plan = rehearse_command.Night(night(), target, None, len(rows), first, last)
    poster = RecordingPoster()
    through = await rehearse_command._paced(stored(), plan, poster, 1e9, rehearse_command.Bar(TARGET))  # type: ignore[arg-type]
    assert through == last
    marks: list[float] = []
    sent: list[str] = []
    for batch in poster.batches:
        *events, mark = batch
        assert mark["type"] == "watermark" and mark["campaign"] == TARGET and len(events) <= 7
        times = [datetime.fromisoformat(str(e["occurred_at"])).timestamp() for e in events]
        assert not marks or all(t > marks[-1] for t in times), "no watermark ran ahead of an event sent after it"
        marks.append(datetime.fromisoformat(mark["occurred_at"]).timestamp())
        sent += [e["event_id"] for e in events]
    assert marks == sorted(marks) and marks[-1] == last and len(marks) > 100 / 7
    assert sent == [f"{TARGET}/e{i}" for i in range(len(rows))], "every event once, in order"


def test_the_table_reads_in_the_nights_own_time_zone():
    fired = MIDNIGHT.timestamp() + 28 * 60 + 5
    assert night_time(fired, "Asia/Shanghai") == "2025-11-11 00:28:05 +08"
    assert night_time(fired, "Asia/Kolkata") == "2025-11-10 21:58:05 +05:30"
    alerts = [
        NightAlert("orders_low", {"campaign": TARGET, "rehearsal": "true"}, Severity.EMERGENCY, fired, fired + 60),
        NightAlert("stock_low", {"campaign": TARGET, "sku": "SKU-A"}, Severity.WARNING, fired + 1, None),
    ]
    assert table(alerts, "Asia/Shanghai") == [
        "RULE        LABELS     SEVERITY   FIRED                    RESOLVED",
        "orders_low  -          emergency  2025-11-11 00:28:05 +08  2025-11-11 00:29:05 +08",
        "stock_low   sku=SKU-A  warning    2025-11-11 00:28:06 +08  still firing",
    ]
    assert table([], "Asia/Shanghai") == ["no rule fired during the night"]
