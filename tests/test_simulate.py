"""`warroom simulate` as an integrator: real HTTP into the real server, history into the baseline campaign, every
event in the night's own time and each batch closed by a watermark."""

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from app.campaigns.clock import REPLAY_LATENESS_S
from app.campaigns.model import load_file
from app.drill.simulate import AS_FAST_AS_POSSIBLE, Night, due
from tests.conftest import create_key

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def simulate(server_url: str, key: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "simulate",
            "--url",
            server_url,
            "--key",
            key,
            "--speed",
            "1200",
            "--minutes-before",
            "2",
            "--minutes-after",
            "4",
            "--seed",
            "5",
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_simulate_posts_history_and_live_events_idempotently(server, dsn, db):
    key = await create_key(dsn)
    first = simulate(server.url, key, "--history", "--incident", "payment_outage@1")
    assert first.returncode == 0, first.stderr
    assert (
        "[history double11-2025] done · 00:04:00" in first.stderr
        and "[live double11-demo] done · 00:04:00" in first.stderr
    )
    assert "incident: payment_outage starts at 00:01:00 in double11-demo" in first.stderr, first.stderr
    counts = dict(await db.fetch("SELECT campaign, count(*) FROM events GROUP BY campaign"))
    assert counts["double11-demo"] > 500 and counts["double11-2025"] > 400
    nights = {
        row["campaign"]: row
        for row in await db.fetch(
            "SELECT campaign, min(occurred_at) FILTER (WHERE type <> 'watermark') AS first,"
            " max(occurred_at) FILTER (WHERE type <> 'watermark') AS last,"
            " max(occurred_at) FILTER (WHERE type = 'watermark') AS watermark,"
            " count(*) FILTER (WHERE type = 'watermark') AS watermarks FROM events GROUP BY campaign"
        )
    }
    for campaign, burst in (("double11-demo", THIS_BURST), ("double11-2025", LAST_BURST)):
        night = nights[campaign]
        assert burst - timedelta(minutes=2) <= night["first"] and night["last"] < burst + timedelta(minutes=4), night
        if campaign == "double11-demo":
            assert night["watermark"] == burst + timedelta(minutes=4), "the last watermark is the end of the night sent"
        else:  # the history is all there is of last year's night: it is closed at its end, so its totals are final
            assert night["watermark"] == LAST_YEAR_END + timedelta(seconds=REPLAY_LATENESS_S), night
        assert night["watermarks"] >= 1

    again = simulate(server.url, key, "--history", "--no-live")
    assert again.returncode == 0, again.stderr
    assert "accepted 0" in again.stderr.splitlines()[-1]

    shopping = "SELECT count(*) FROM events WHERE campaign = 'double11-demo' AND type <> 'watermark'"
    before = await db.fetchval(shopping)
    fast = simulate(server.url, key, "--speed", "0", "--incident", "payment_outage@1")
    assert fast.returncode == 0 and "as fast as the server takes it" in fast.stderr, fast.stderr
    assert await db.fetchval(shopping) == before, "the same night at any speed: every event is a duplicate"


THIS_BURST = datetime(2026, 11, 11, tzinfo=timezone(timedelta(hours=8)))
LAST_BURST = datetime(2025, 11, 11, tzinfo=timezone(timedelta(hours=8)))
LAST_YEAR_END = load_file(Path(ROOT) / "campaigns" / "double11-2025.yaml").end
"""The burst starts of the shipped campaign files: the drill's midnight, whatever the speed."""


def test_a_paced_drill_sends_each_simulated_second_once_the_real_clock_reaches_it():
    assert [due(-60, elapsed, 60.0, 120) for elapsed in (0.0, 0.5, 1.0, 2.99, 10.0)] == [-59, -29, 1, 120, 120]
    assert due(-60, 0.0, AS_FAST_AS_POSSIBLE, 120) == 120, "speed 0: everything at once"


def test_the_night_reads_its_own_clock_and_its_watermark_says_how_far_it_has_been_sent():
    night = Night("double11-demo", THIS_BURST, ZoneInfo("Asia/Shanghai"))
    assert night.iso(-1200) == "2026-11-10T23:40:00+08:00" and night.clock(192) == "00:03:12"
    assert night.watermark(192, "sim11") == {
        "event_id": "sim11-watermark-192",
        "type": "watermark",
        "campaign": "double11-demo",
        "occurred_at": "2026-11-11T00:03:12+08:00",
    }


def test_simulate_refuses_a_negative_speed(server):
    result = simulate(server.url, "wr_x_y", "--speed", "-1")
    assert result.returncode == 1 and "--speed must be 0" in result.stderr


def test_simulate_rejects_unknown_incidents(server):
    result = simulate(server.url, "wr_x_y", "--incident", "meteor@3")
    assert result.returncode == 1 and "unknown incident 'meteor'" in result.stderr
