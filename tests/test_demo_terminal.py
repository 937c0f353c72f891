"""The demo's terminal as a person reads it: the banner once the server answers, keys kept and shown again, one
status line in place, a line per incident and alert, no request logs, text logs on a terminal and JSON elsewhere."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import re
import select
import signal
import stat
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import httpx

from app.core import logs
from app.drill.console import CLEAR_LINE, Console, Status, alert_line, display_width, fit, incident_line, status_line
from app.drill.watch import Watch, events_per_s
from tests.conftest import free_port
from tests.helpers import ROOT, warroom

BANNER = "Promo War-Room is running on "
START_TIMEOUT_S = 90
NEWS_TIMEOUT_S = 240
"""The first incident starts about 24 s into the drill and its alerts resolve about 15 s later at 60x; a loaded
machine (two cores shared by the suite) evaluates rules less often, so the night's news may come much later."""
STOP_TIMEOUT_S = 120
STATUS_DRAWS = 4


class Terminal(io.StringIO):
    """A terminal's output stream, as a test sees it."""

    def isatty(self) -> bool:
        return True


def screen(output: str) -> list[str]:
    """What a terminal shows after ``output``: ``\\r`` returns to the line's start, ``ESC[K`` erases to its end,
    ``\\n`` starts the next line, other escape sequences draw nothing."""
    lines, column, i = [""], 0, 0
    while i < len(output):
        if output.startswith("\x1b[K", i):
            lines[-1], i = lines[-1][:column], i + 3
            continue
        escape = re.match(r"\x1b\[[0-9;?]*[A-Za-z]", output[i:])
        if escape:
            i += len(escape.group())
            continue
        char = output[i]
        if char == "\r":
            column = 0
        elif char == "\n":
            lines.append("")
            column = 0
        else:
            line = lines[-1].ljust(column)
            lines[-1] = line[:column] + char + line[column + 1 :]
            column += 1
        i += 1
    return lines


# ---- the console, without a server ---------------------------------------------------------------------------------


def test_on_a_terminal_the_status_stays_in_place_below_the_news():
    out = Terminal()
    console = Console(out, columns=lambda: 40)
    console.status("00:00:01 · Burst")
    console.status("00:00:02 · Burst")
    console.line("00:04:00 INCIDENT gmv_drop starts")
    console.status("00:04:01 · Burst · " + "x" * 60)
    console.close()
    console.status("drawn after the end")
    raw = out.getvalue()
    assert raw.count(CLEAR_LINE) >= 4, "each status is drawn over the last"
    shown = screen(raw)
    assert shown == ["00:04:00 INCIDENT gmv_drop starts", "00:04:01 · Burst · " + "x" * 19 + "…", ""], shown
    assert all(display_width(line) < 40 for line in shown), "a status wider than the terminal would wrap and scroll"


def test_log_lines_written_to_stderr_come_above_the_status_line():
    out, err = Terminal(), Terminal()
    console = Console(out, columns=lambda: 80)
    console.status("rehearsal 00:03:12 · Burst")
    stderr = console.writer(err)
    stderr.write("18:02:11 INFO    app.server: rea")
    assert err.getvalue() == "", "a partial line waits for its end"
    stderr.write("dy\n")
    assert err.getvalue() == "18:02:11 INFO    app.server: ready\n"
    assert out.getvalue().endswith(CLEAR_LINE + "rehearsal 00:03:12 · Burst"), "the status is drawn again below it"
    assert stderr.isatty()


def test_not_on_a_terminal_the_status_is_a_plain_line_every_few_seconds():
    out, now = io.StringIO(), [0.0]
    console = Console(out, plain_every_s=10, clock=lambda: now[0])
    for second in range(25):
        now[0] = float(second)
        console.status(f"status {second}")
    console.line("00:04:00 INCIDENT gmv_drop starts")
    assert out.getvalue().splitlines() == ["status 0", "status 10", "status 20", "00:04:00 INCIDENT gmv_drop starts"]
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_chinese_text_takes_two_columns_and_is_cut_to_the_terminal():
    assert display_width("告警 2 条") == 9
    assert fit("演练 00:03:12 · 爆发期", 12) == "演练 00:03:…"
    assert display_width(fit("演练 00:03:12 · 爆发期", 12)) <= 12


def test_the_status_line_in_each_language():
    status = Status("00:03:12", True, "burst", 3412.0, 1_492_000.0, "CNY", {"warning": 1, "emergency": 1})
    assert status_line(status, "en") == (
        "rehearsal 00:03:12 · Burst · 3.41K events/s · GMV ¥1.49M · 2 alerts firing (Emergency 1 · Warning 1)"
    )
    assert (
        status_line(status, "zh")
        == "演练 00:03:12 · 爆发期 · 3,412 事件/秒 · GMV ¥149.2万 · 告警 2 条（紧急 1 · 警告 1）"
    )
    quiet = Status("23:41:00", True, "preheat", None, 0.0, "CNY", {})
    assert status_line(quiet, "en").endswith("· — events/s · GMV ¥0 · no alerts")
    slow = Status("23:41:00", True, "preheat", 86.28, 0.0, "CNY", {})
    assert " · 86 events/s · " in status_line(slow, "en"), "whole events per second"


def test_an_alert_line_carries_the_alerts_own_summary_on_the_nights_clock():
    transition = {
        "kind": "firing",
        "at": "2026-11-10T16:28:42+00:00",
        "timezone": "Asia/Shanghai",
        "severity": "emergency",
        "rule": "payment_success_rate_low",
        "summary_en": "Payment success rate 51.7% (threshold 80%)",
        "summary_zh": "支付成功率 51.7%（阈值 80%）",
    }
    assert alert_line(transition, "en") == (
        "00:28:42 FIRING       Emergency payment_success_rate_low — Payment success rate 51.7% (threshold 80%)"
    )
    assert alert_line({**transition, "kind": "resolved"}, "zh") == (
        "00:28:42 恢复         紧急      payment_success_rate_low — 支付成功率 51.7%（阈值 80%）"
    )
    assert incident_line("sellout", "00:16:00", 10, "en").startswith(
        "00:16:00 INCIDENT     sellout starts (drill script, lasts 10 min): sell-out"
    )


def test_the_alert_stream_tells_each_transition_once_and_keeps_the_count():
    out = io.StringIO()
    watch = Watch("http://127.0.0.1:1", "double11-demo", "wr_s", "wr_o", Console(out), "en")
    watch.take({"type": "snapshot", "seq": 7, "alerts": [{"id": "a1", "severity": "warning"}], "clocks": []})
    transition = {
        "type": "transition",
        "at": "2026-11-10T16:28:42+00:00",
        "timezone": "Asia/Shanghai",
        "rule": "payment_outage",
        "summary_en": "Payment outage",
        "summary_zh": "支付故障",
    }
    watch.take({**transition, "seq": 8, "id": "a2", "kind": "firing", "severity": "emergency"})
    watch.take({**transition, "seq": 9, "id": "a2", "kind": "acknowledged", "severity": "emergency"})
    watch.take({"type": "heartbeat", "seq": 9})
    assert watch.firing == {"a1": "warning", "a2": "emergency"}
    watch.take({**transition, "seq": 10, "id": "a1", "kind": "resolved", "severity": "warning"})
    assert watch.firing == {"a2": "emergency"} and watch.last_seq == 10, "a reconnection resumes after seq 10"
    told = [line.split()[1] for line in out.getvalue().splitlines()]
    assert told == ["FIRING", "ACKNOWLEDGED", "RESOLVED"]


def test_events_per_second_over_the_samples_kept():
    assert events_per_s(deque([(0.0, 100)])) is None
    assert events_per_s(deque([(0.0, 100), (2.0, 3100), (4.0, 8100)])) == 2000.0
    now = [0.0]
    watch = Watch("http://127.0.0.1:1", "double11-demo", "wr_s", "wr_o", Console(io.StringIO()), "en", lambda: now[0])
    snapshot = {
        "as_of": "2026-11-10T16:00:05+00:00",
        "timezone": "Asia/Shanghai",
        "clock": "replay",
        "phase": "burst",
        "totals": {"gmv_paid": 1000.0},
        "currency": "CNY",
    }
    rates = []
    for second, events in ((0, 0), (1, 100), (2, 300), (10, 1100), (20, 3100), (21, 3200)):
        now[0] = float(second)
        rates.append(watch.status({**snapshot, "events": events}).events_per_s)
    assert rates == [None, 100.0, 150.0, 100.0, 200.0, 2100 / 11], "over 5 s or more, and two looks at least"


def test_logs_are_text_on_a_terminal_and_json_elsewhere_unless_forced():
    assert logs.resolved_format("auto", Terminal()) == "text"
    assert logs.resolved_format("auto", io.StringIO()) == "json"
    assert logs.resolved_format("json", Terminal()) == "json"
    assert logs.resolved_format("text", io.StringIO()) == "text"
    record = logging.LogRecord("app.server", logging.INFO, "", 0, "ready", None, None)
    record.version = "0.1.0"
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d INFO    app\.server: ready  version=0\.1\.0", logs.TextFormatter().format(record)
    )


def test_request_lines_are_off_unless_asked_for():
    def shown(name: str, msg: str, *args: object) -> bool:
        return logs.RequestLines().filter(logging.LogRecord(name, logging.INFO, "", 0, msg, args or None, None))

    assert not shown("uvicorn.error", '%s - "WebSocket %s" [accepted]', "127.0.0.1:5", "/v1/alerts/stream?token=wr_x")
    assert not shown("uvicorn.error", "connection open")
    assert shown("uvicorn.error", "Shutting down") and shown("app.server", "connection open")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure("info", "json")
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
        logs.configure("info", "json", access_log=True)
        assert logging.getLogger("httpx").isEnabledFor(logging.INFO)
        assert not logging.getLogger().handlers[0].filters
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name in logs.REQUEST_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


# ---- the real demo -------------------------------------------------------------------------------------------------


def demo_environment(tmp_path: Path) -> tuple[dict[str, str], int]:
    """A newcomer's environment: no DATABASE_URL, no log format chosen (the demo decides), a data directory and port
    of the test's own."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "WARROOM_LOG_FORMAT", "WARROOM_ACCESS_LOG")}
    env.update({"WARROOM_DATA_DIR": str(tmp_path / "data"), "WARROOM_PORT": str(port), "PYTHONUNBUFFERED": "1"})
    return env, port


def read_line(process: subprocess.Popen, deadline: float, log: Path) -> str:
    """The demo's next line of output (the test fails at ``deadline`` or if the demo stops)."""
    assert process.stdout is not None
    while time.monotonic() < deadline:
        if select.select([process.stdout], [], [], 1.0)[0]:
            line = process.stdout.readline()
            assert line, "the demo stopped:\n" + log.read_text()[-3000:]
            return line
    raise AssertionError("the demo said nothing more in time:\n" + log.read_text()[-3000:])


def stop(process: subprocess.Popen, signal_number: int = signal.SIGTERM) -> None:
    process.send_signal(signal_number)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError("the demo did not stop") from None


def test_the_demo_terminal_not_on_a_terminal(tmp_path):
    """Stdout to a pipe: the banner once its URLs answer, the keys kept in a 0600 file and shown again on demand, each
    incident and alert transition as a line, a plain status line now and then, and no request logs at all."""
    env, port = demo_environment(tmp_path)
    log = tmp_path / "demo.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "demo", "--lang", "en"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        lines = [read_line(process, deadline, log)]
        while not lines[-1].startswith(BANNER):
            lines.append(read_line(process, deadline, log))
        base = lines[-1].removeprefix(BANNER).strip()
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200, (
            "the banner is printed once the server answers"
        )
        while not lines[-1].startswith("Below:"):
            lines.append(read_line(process, deadline, log))
        banner = "".join(lines)
        keys = dict(re.findall(r"^\s+(?:keys:\s+)?(ingest|screen|operator|metrics)\s+(wr_\S+)$", banner, re.M))
        assert sorted(keys) == ["ingest", "metrics", "operator", "screen"], banner
        assert "warroom demo --keys" in banner and "warroom keys create --name NAME --scope" in banner

        keys_file = tmp_path / "data" / "demo-keys.env"
        assert f"kept in {keys_file}" in banner
        assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
        kept = dict(line.split("=", 1) for line in keys_file.read_text().splitlines() if not line.startswith("#"))
        assert kept == {"WARROOM_URL": base, **{f"WARROOM_{s.upper()}_KEY": k for s, k in keys.items()}}
        alerts = httpx.get(f"{base}/v1/alerts", headers={"X-API-Key": kept["WARROOM_OPERATOR_KEY"]}, timeout=10)
        assert alerts.status_code == 200, "the operator key of the file signs in"
        again = warroom("demo", "--keys", env={"WARROOM_DATA_DIR": env["WARROOM_DATA_DIR"]})
        assert again.returncode == 0, again.stderr
        assert all(f"{scope:<8} {key}" in again.stdout for scope, key in keys.items()), again.stdout
        assert f"{base}/wall/double11-demo?token={keys['screen']}" in again.stdout

        news: list[str] = []
        deadline = time.monotonic() + NEWS_TIMEOUT_S
        incident, firing, resolved = re.compile(r"^00:04:00 INCIDENT +gmv_drop starts"), " FIRING ", " RESOLVED "
        while not (
            any(incident.match(line) for line in news)
            and any(firing in line for line in news)
            and any(resolved in line for line in news)
        ):
            news.append(read_line(process, deadline, log))
        told = "".join(news)
        fired = next(line for line in news if firing in line)
        assert re.match(r"^\d\d:\d\d:\d\d FIRING +(Warning|Emergency) +\w+ — \S", fired), fired
        statuses = [line for line in news if line.startswith("rehearsal ")]
        assert statuses and re.match(
            r"rehearsal \d\d:\d\d:\d\d · [\w-]+ · \S+ events/s · GMV ¥\S+ · (no alerts|\d+ alerts firing)", statuses[-1]
        ), told
    finally:
        stop(process)
    everything = banner + told + log.read_text()
    assert "HTTP Request:" not in everything and '"logger": "httpx"' not in everything, "no request logs"
    assert '"WebSocket ' not in everything and '"GET /' not in everything and '"POST /' not in everything
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(r["logger"] == "app.server" and r["msg"] == "ready" for r in records), "logs are JSON off a terminal"


def test_the_demo_terminal_on_a_terminal(tmp_path):
    """In a pseudo-terminal: the logs read as text and the status line is redrawn in place, never scrolling."""
    env, _ = demo_environment(tmp_path)
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the demo, on the terminal
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "app.cli", "demo", "--no-drill", "--lang", "en"], env)
    output = b""
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while output.count(b"events/s") < STATUS_DRAWS:
            assert time.monotonic() < deadline, output.decode(errors="replace")[-3000:]
            if select.select([terminal], [], [], 1.0)[0]:
                output += os.read(terminal, 65536)
    finally:
        os.kill(pid, signal.SIGINT)
        end = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < end:
            if select.select([terminal], [], [], 1.0)[0]:
                try:
                    chunk = os.read(terminal, 65536)
                except OSError:  # the demo closed the terminal: it has stopped
                    break
                if not chunk:
                    break
                output += chunk
        os.waitpid(pid, 0)
    text = output.decode()
    shown = screen(text)
    assert re.search(r"^\d\d:\d\d:\d\d INFO +app\.server: ready", text, re.M), "logs read as text on a terminal"
    assert '{"ts"' not in text
    status = re.compile(r"^(rehearsal )?\d\d:\d\d:\d\d · .* events/s · GMV .* · no alerts$")
    drawn = [line for line in text.split(CLEAR_LINE) if status.match(line.split("\r")[0].strip())]
    assert len(drawn) >= STATUS_DRAWS, "the status line is redrawn every second"
    assert len([line for line in shown if status.match(line)]) == 1, "...in place: it never scrolls\n" + "\n".join(
        shown[-20:]
    )
