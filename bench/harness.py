"""What every ``warroom bench`` shares: a throw-away PostgreSQL, the server as a child process, CPU metering,
the machine and code description, progress lines and option checks.

The benchmarks differ in the load they offer and what they report; everything
that makes a run trustworthy and comparable (fresh database, real server
process stopped by SIGTERM, CPU split between server, PostgreSQL, load
generator and everything else) lives here once.
"""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import uvloop

from app import __version__
from app.core.database import EmbeddedPostgres, upgrade
from bench import loadclient

T = TypeVar("T")

EVENTS_PATH = "/v1/events"
READY_PATH = "/readyz"
SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 60.0
READY_POLL_S = 0.1
LOG_TAIL_BYTES = 4_000
SERVER_ENV = {"WARROOM_LOG_LEVEL": "warning", "WARROOM_RATE_LIMIT_PER_S": "0"}
"""Every benchmark's server: quiet logs, no rate limit (the load is the point)."""
POSTGRES_SETTINGS = ("shared_buffers", "synchronous_commit", "fsync", "wal_level", "max_wal_size", "checkpoint_timeout")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """The benchmark could not run (server did not start, bad arguments)."""


@contextmanager
def step(label: str) -> Iterator[list[str]]:
    """Print ``label ...`` on stderr, then the elapsed seconds and the notes the block appended."""
    print(f"{label} ...", end="", file=sys.stderr, flush=True)
    started = time.perf_counter()
    notes: list[str] = []
    try:
        yield notes
    finally:
        tail = f"  {', '.join(notes)}" if notes else ""
        print(f" {time.perf_counter() - started:.1f}s{tail}", file=sys.stderr, flush=True)


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 is the state), or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _cpu_seconds(fields: list[str], with_reaped_children: bool) -> float:
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def _machine_seconds() -> tuple[float, float, float]:
    """CPU seconds the whole machine spent in processes (user, nice, system), in irq + softirq, and stolen."""
    fields = [int(f) / CLOCK_TICKS for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system, irq + softirq, steal


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds of the server, PostgreSQL, this (load generating) process and the whole machine."""

    server: float
    postgres: float
    bench: float
    processes: float
    irq: float
    steal: float

    def cores_until(self, later: CpuSample, elapsed_s: float) -> dict[str, float]:
        """Average cores used between this sample and ``later``.

        ``other`` is every other process (other users' work, and kernel threads
        such as the file system journal); ``irq`` includes loopback networking;
        ``steal`` is time the hypervisor gave to other machines.
        """
        used = {
            name: (getattr(later, name) - getattr(self, name)) / elapsed_s
            for name in ("server", "postgres", "bench", "processes", "irq", "steal")
        }
        used["other"] = max(used.pop("processes") - used["server"] - used["postgres"] - used["bench"], 0.0)
        return {name: round(value, 2) for name, value in used.items()}


class CpuMeter:
    """Reads CPU time from /proc; PostgreSQL is the postmaster, its live children and its reaped ones."""

    def __init__(self, postmaster_pid: int) -> None:
        self._postmaster_pid = postmaster_pid
        self.server_pids: frozenset[int] = frozenset()
        """The server's processes; their live children (ingest processes) count as server too."""

    def sample(self) -> CpuSample:
        postgres = server = 0.0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            fields = _stat_fields(pid)
            if fields is None:
                continue
            parent = int(fields[1])
            if pid == self._postmaster_pid:
                postgres += _cpu_seconds(fields, with_reaped_children=True)
            elif parent == self._postmaster_pid:
                postgres += _cpu_seconds(fields, with_reaped_children=False)
            elif pid in self.server_pids or parent in self.server_pids:
                server += _cpu_seconds(fields, with_reaped_children=False)
        return CpuSample(server, postgres, time.process_time(), *_machine_seconds())


def descendants_cpu_seconds(root: int, excluded: frozenset[int]) -> float:
    """CPU seconds of the live processes descending from ``root`` (itself not included), leaving out the subtrees
    of ``excluded``: what a benchmark's helpers (a browser and its driver) use apart from the server it started."""
    stats: dict[int, list[str]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            stats[int(entry.name)] = fields
    total = 0.0
    for pid, fields in stats.items():
        ancestor = int(fields[1])
        while ancestor not in (root, 0, 1) and ancestor not in excluded and pid not in excluded:
            ancestor = int(stats[ancestor][1]) if ancestor in stats else 0
        if ancestor == root and pid not in excluded:
            total += _cpu_seconds(fields, with_reaped_children=False)
    return total


def start_database(pgdata: Path) -> EmbeddedPostgres:
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    database = EmbeddedPostgres(pgdata)
    database.ensure_database()
    return database


def stop_database(database: EmbeddedPostgres) -> None:
    """Stop the embedded server: pgserver hands back the same handle, whose cleanup() runs ``pg_ctl stop``."""
    import pgserver

    pgserver.get_server(database.pgdata).cleanup()


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])


def on_fresh_database(work: Callable[[Path, str, int], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine ``work(workdir, dsn, postmaster pid)`` on a throw-away embedded PostgreSQL, in a
    temporary directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="warroom-bench-") as tmp:
        workdir = Path(tmp)
        with step(f"starting a fresh embedded PostgreSQL in {workdir}"):
            database = start_database(workdir / "pgdata")
        try:
            upgrade(database.dsn())
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(work(workdir, database.dsn(), postmaster_pid(database.pgdata)))
        finally:
            stop_database(database)


def code_version() -> dict[str, Any]:
    """The version and, in a git checkout, the commit the benchmark ran (dirty: uncommitted changes present)."""
    root = Path(__file__).resolve().parents[1]
    version: dict[str, Any] = {"version": __version__, "git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return version
    version.update(git_commit=commit.stdout.strip(), git_dirty=bool(status.stdout.strip()))
    return version


def machine(postgres_version: str | None = None, postgres_settings: dict[str, str] | None = None) -> dict[str, Any]:
    """The hardware, OS and Python a run used, and PostgreSQL's version and settings when it used one."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    meminfo = Path("/proc/meminfo").read_text()
    mem_kib = next(int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:"))
    return {
        "cpu_model": models[0] if models else platform.processor(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        **({"postgresql": postgres_version, "postgresql_settings": postgres_settings} if postgres_version else {}),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind((loadclient.HOST, 0))
        return s.getsockname()[1]


def _log_tail(workdir: Path) -> str:
    data = (workdir / "server.log").read_bytes()
    return data[-LOG_TAIL_BYTES:].decode(errors="replace")


async def wait_ready(server: subprocess.Popen[bytes], port: int, workdir: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"the server exited with status {server.returncode}:\n{_log_tail(workdir)}")
        try:
            if await loadclient.get_status(port, READY_PATH) == 200:
                return
        except (*loadclient.ANSWER_FAILURES, TimeoutError):
            pass
        await asyncio.sleep(READY_POLL_S)
    raise BenchError(f"the server was not ready within {SERVER_START_TIMEOUT_S:g}s:\n{_log_tail(workdir)}")


def stop_server(server: subprocess.Popen[bytes]) -> int:
    """SIGTERM (graceful: the server commits what is queued), then wait; kill only if it hangs.

    uvicorn re-raises the signal after its graceful shutdown, so -SIGTERM is a clean exit status.
    """
    server.send_signal(signal.SIGTERM)
    try:
        return server.wait(SERVER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        raise BenchError(f"the server did not stop within {SERVER_STOP_TIMEOUT_S:g}s of SIGTERM; killed") from None


def _number(value: float) -> str:
    return f"{int(value):,}" if value == int(value) else f"{value:g}"


def check_option(name: str, value: float, low: float, high: float, *, low_exclusive: bool = False) -> None:
    """BenchError unless ``low <= value <= high`` (``low < value`` with ``low_exclusive``), naming the option."""
    if low_exclusive and not low < value <= high:
        raise BenchError(f"--{name} must be above {_number(low)} and at most {_number(high)}")
    if not low_exclusive and not low <= value <= high:
        raise BenchError(f"--{name} must be from {_number(low)} to {_number(high)}")


def report(args: Any, measure: Callable[[], dict[str, Any]], table: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
    """Run a benchmark from the command line: progress on stderr, then the table (or with ``--json`` one
    JSON object) on stdout; a bad option exits with its message."""
    try:
        result = measure()
    except BenchError as exc:
        sys.exit(f"warroom bench: {exc}")
    print(msgspec.json.format(msgspec.json.encode(result)).decode() if args.json else table(result))
    return result
