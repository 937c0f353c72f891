"""`warroom simulate` as an integrator: real HTTP into the real server, history into the baseline campaign."""

import os
import subprocess
import sys

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
    assert "[history double11-2025] done" in first.stderr and "[live double11-demo] done" in first.stderr
    counts = dict(await db.fetch("SELECT campaign, count(*) FROM events GROUP BY campaign"))
    assert counts["double11-demo"] > 500 and counts["double11-2025"] > 400
    gap = await db.fetchval(
        "SELECT (SELECT max(occurred_at) FROM events WHERE campaign = 'double11-demo')"
        " - (SELECT max(occurred_at) FROM events WHERE campaign = 'double11-2025')"
    )
    assert 363 <= gap.days <= 365

    again = simulate(server.url, key, "--history", "--no-live")
    assert again.returncode == 0, again.stderr
    assert "accepted 0" in again.stderr.splitlines()[-1]


def test_simulate_rejects_unknown_incidents(server):
    result = simulate(server.url, "wr_x_y", "--incident", "meteor@3")
    assert result.returncode == 1 and "unknown incident 'meteor'" in result.stderr
