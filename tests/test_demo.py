"""`warroom demo` on a machine with no DATABASE_URL: embedded PostgreSQL, a printed key, a curl that works."""

import os
import re
import shlex
import signal
import subprocess
import sys
import time

import httpx

from app.core.settings import DEFAULT_SHUTDOWN_GRACE_S
from app.drill.demo import DEMO_CAMPAIGN
from tests.conftest import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = DEFAULT_SHUTDOWN_GRACE_S + 60


def start_demo(tmp_path, *args: str) -> tuple[subprocess.Popen, int]:
    """``warroom demo`` as a newcomer runs it: no DATABASE_URL, its own data directory and port; its log is
    kept in ``tmp_path/demo.log`` for ``stop_demo`` to show."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"WARROOM_DATA_DIR": str(tmp_path / "data"), "WARROOM_PORT": str(port), "WARROOM_LOG_FORMAT": "json"})
    with open(tmp_path / "demo.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "demo", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    return process, port


def stop_demo(process: subprocess.Popen, tmp_path) -> None:
    """SIGTERM, then wait as long as the server may take: its connection grace, then draining and the database's
    own shutdown. A stop that takes longer fails with the end of the log, which times each shutdown step."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        tail = (tmp_path / "demo.log").read_text().splitlines()[-40:]
        raise AssertionError(f"demo did not stop {STOP_TIMEOUT_S}s after SIGTERM:\n" + "\n".join(tail)) from None


def test_demo_prints_a_curl_command_that_stores_an_event(tmp_path):
    process, port = start_demo(tmp_path, "--no-drill")
    try:
        lines: list[str] = []
        deadline = time.monotonic() + START_TIMEOUT_S
        while not any(line.strip().startswith("-d ") for line in lines):
            assert time.monotonic() < deadline, "demo printed no curl command:\n" + "".join(lines)
            lines.append(process.stdout.readline())
        text = "".join(lines)
        command = re.search(r"(curl .*?-d '.*?')", text.replace("\\\n", " "), re.S).group(1)

        while True:
            result = subprocess.run(shlex.split(command) + ["--fail-with-body"], capture_output=True, text=True)
            if result.returncode != 7:  # 7: server not listening yet
                break
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        assert result.returncode == 0, result.stdout + result.stderr
        assert '"accepted":1' in result.stdout
        screen = re.search(r"screen\s+(wr_\S+)", text).group(1)
        snapshot = f"http://127.0.0.1:{port}/v1/campaigns/{DEMO_CAMPAIGN}/snapshot?token={screen}"
        while httpx.get(snapshot, timeout=5).json()["totals"]["orders_paid"] != 1:  # the wall the demo prints counts it
            assert time.monotonic() < deadline, "the posted order is not counted in the demo's campaign"
            time.sleep(0.2)
        assert (tmp_path / "data" / "pgdata" / "PG_VERSION").exists()
    finally:
        stop_demo(process, tmp_path)
    pgdata = str(tmp_path / "data" / "pgdata")
    running = subprocess.run(["pgrep", "-f", f"postgres -D {pgdata}"], capture_output=True, text=True).stdout
    assert running == "", "the embedded PostgreSQL must stop with the server"


DRILL_TIMEOUT_S = 120
NIGHT_GOES_ON_TIMEOUT_S = 30


def test_demo_runs_the_night_with_last_years_history(tmp_path):
    """`warroom demo`: the campaigns are scheduled, history and the live night arrive, midnight bursts."""
    import httpx

    process, port = start_demo(tmp_path)
    try:
        lines: list[str] = []
        while not any(line.strip().startswith("screen ") for line in lines):
            lines.append(process.stdout.readline())
        screen = next(line.split()[1] for line in lines if line.strip().startswith("screen "))
        base = f"http://127.0.0.1:{port}/v1/campaigns"

        def snapshot(campaign: str) -> dict | None:
            try:
                response = httpx.get(f"{base}/{campaign}/snapshot", params={"token": screen}, timeout=5)
            except httpx.TransportError:
                return None
            return response.json() if response.status_code == 200 else None

        deadline = time.monotonic() + DRILL_TIMEOUT_S
        seen: list[dict] = []
        while True:
            assert time.monotonic() < deadline, f"no burst within {DRILL_TIMEOUT_S}s: {seen[-1:] or 'no snapshot'}"
            now = snapshot("double11-demo")
            if now is not None:
                seen.append(now)
                if now["phase"] == "burst" and now["totals"]["orders_paid"] > 0:
                    break
            time.sleep(0.2)
        history = snapshot("double11-2025")
        assert history is not None and history["events"] > 0 and history["totals"]["orders_paid"] > 0
        assert now["baseline"] is not None, "this year's snapshot compares with last year's"
        first_orders, deadline = now["totals"]["orders_paid"], time.monotonic() + NIGHT_GOES_ON_TIMEOUT_S
        while (later := snapshot("double11-demo")) is None or later["totals"]["orders_paid"] <= first_orders:
            assert time.monotonic() < deadline, "the night does not go on: no order after the first ones"
            time.sleep(0.2)
    finally:
        stop_demo(process, tmp_path)
