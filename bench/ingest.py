"""``warroom bench ingest``: how close HTTP ingest gets to PostgreSQL's raw COPY, from one run.

Everything runs against a throw-away embedded PostgreSQL in a temporary
directory, so runs are repeatable and never touch user data:

1. raw COPY ceiling: asyncpg ``copy_records_to_table`` straight into the real
   ``events`` table (primary key, unique ``event_id``, BRIN index), from 2
   connections, in 1,000- and 10,000-row batches;
2. HTTP batch ingest into the ingest tier alone, as deployed when it has the
   machine to itself (README "Ingest tier"): ``--ingest-processes`` ingest-role
   processes on one port and, standing in for the full server on another host,
   a process doing the metrics engine's reads of every event
   (``bench.engine_reads``); warmed up with every sample event once, then N
   keep-alive clients posting 500 events per request;
3. HTTP batch ingest all in one: the real server (``warroom serve``, its own
   process, rate limit off, started in the temporary directory so the relative
   campaign and rule directories are not loaded; its metrics engine aggregates
   every event and its alert service runs) with the same ingest processes on
   their own port, which is where this and the next phases post (``0``: the
   server alone on its port, and no phase 2); warmed up, then the same load;
4. single events, closed loop: N clients, one event per request;
5. single events, paced: a fixed request rate, each latency measured from the
   request's scheduled send time;
6. verification that ``events`` holds exactly the accepted events (and, after
   phase 2, that the engine's reads saw every one of them).

``events`` is emptied (TRUNCATE) before each COPY batch size and before each
deployment's HTTP phases. Every measured phase starts after a
CHECKPOINT so it does not pay for the previous phase's dirty pages. The load
generator runs in this process (otherwise idle while it runs); its CPU use is
reported next to the server's and PostgreSQL's so its cost stays visible, and
so is the CPU everything else on the machine used: on a shared machine other
work lowers the numbers, and the report says so instead of hiding it.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from app.access import keys
from app.campaigns import store
from app.core.settings import Settings
from app.ingest.events import COLUMNS
from app.ingest.tier import IngestProcesses
from bench import harness, loadclient, workload
from bench.harness import EVENTS_PATH, SERVER_ENV, CpuMeter
from bench.loadclient import LoadResult

PHASES = 6
COPY_BATCH_ROWS = (1_000, 10_000)
COPY_CONNECTIONS = 2
BATCH_EVENTS = 500
POOL_EVENTS = 10_000
"""Distinct events generated up front; requests and COPY rows cycle through them with fresh ids."""
WARMUP_MAX_S = 60.0
"""The warm-up posts every pooled event once, so the server's metrics engine has met every SKU, channel
and campaign key before the measured phases (first sight of a key costs more than later ones)."""
MAX_COPY_ROWS_PER_S = 2_000_000
MAX_BATCH_EVENTS_PER_S = 1_000_000
MAX_SINGLE_REQUESTS_PER_S = 100_000
"""Count bounds far above what any machine reaches; each phase also stops after ``--seconds``."""
MAX_SECONDS = 600.0
MAX_CLIENTS = 1_024
MAX_RATE = 100_000.0
PACED_IN_FLIGHT_S = 0.1
"""The paced phase opens enough connections to keep ``rate x 0.1 s`` requests in flight without queueing."""
PACED_MIN_CONNECTIONS = 8
PACED_MAX_CONNECTIONS = 512
ROW_SIZE_SAMPLE = 10_000
KEY_NAME = "bench"
MAX_HISTORY_ROWS = 200_000_000
HISTORY_BATCH_ROWS = 100_000
ENGINE_READS_STOP_TIMEOUT_S = 60.0
"""How long the engine's reads may take to read what is left after SIGTERM."""
TARGET_BATCH_RATIO = 0.5
TARGET_SINGLE_RATE = 2_000.0
TARGET_SINGLE_P99_MS = 50.0
RATE_TOLERANCE = 0.99
"""The paced phase counts as keeping up when it achieved at least 99% of the scheduled rate."""
MAX_INGEST_PROCESSES = 16
QUIET_OTHER_CORES = 0.1
"""Other processes and steal taking more than this (average cores) during a measured phase make the run suspect."""


@dataclass(frozen=True)
class Parameters:
    """The ``bench ingest`` options, checked against bounds that keep every phase finite."""

    seconds: float
    clients: int
    single_clients: int
    single_rate: float
    ingest_processes: int
    history_rows: int = 0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Parameters:
        harness.check_option("seconds", args.seconds, 0, MAX_SECONDS, low_exclusive=True)
        harness.check_option("clients", args.clients, 1, MAX_CLIENTS)
        harness.check_option("single-clients", args.single_clients, 1, MAX_CLIENTS)
        harness.check_option("single-rate", args.single_rate, 0, MAX_RATE, low_exclusive=True)
        harness.check_option("ingest-processes", args.ingest_processes, 0, MAX_INGEST_PROCESSES)
        harness.check_option("history-rows", args.history_rows, 0, MAX_HISTORY_ROWS)
        if args.history_rows and not args.ingest_processes:
            raise harness.BenchError("--history-rows needs the ingest-tier phase: --ingest-processes of at least 1")
        return cls(
            args.seconds, args.clients, args.single_clients, args.single_rate, args.ingest_processes, args.history_rows
        )

    @property
    def deployment(self) -> str:
        """What the HTTP phases post to, in words."""
        if not self.ingest_processes:
            return "the full server alone (one process, WARROOM_INGEST_PROCESSES=0)"
        return (
            f"{self.ingest_processes} ingest processes (WARROOM_INGEST_PROCESSES={self.ingest_processes}, "
            "their own port) beside the full server"
        )

    @property
    def paced_connections(self) -> int:
        wanted = math.ceil(self.single_rate * PACED_IN_FLIGHT_S)
        return min(PACED_MAX_CONNECTIONS, max(PACED_MIN_CONNECTIONS, wanted))


@dataclass
class Phase:
    """One measured phase, as reported."""

    rate: float
    unit: str
    elapsed_s: float
    cpu_cores: dict[str, float]
    load: LoadResult | None = None

    def percentile_ms(self, q: float) -> float | None:
        """A request latency percentile, rounded; None for COPY phases, which have no requests."""
        value = self.load.percentile_ms(q) if self.load is not None else None
        return round(value, 2) if value is not None else None

    @property
    def errors(self) -> int:
        return sum(self.load.errors.values()) if self.load is not None else 0

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rate": round(self.rate, 1), "unit": self.unit, "elapsed_s": round(self.elapsed_s, 2)}
        if self.load is not None:
            out.update(
                requests=self.load.requests,
                accepted_events=self.load.accepted,
                p50_ms=self.percentile_ms(50),
                p90_ms=self.percentile_ms(90),
                p99_ms=self.percentile_ms(99),
                max_ms=self.percentile_ms(100),
                errors=dict(self.load.errors),
            )
        out["cpu_cores"] = self.cpu_cores
        return out


async def _reset(conn: asyncpg.Connection) -> None:
    """Empty ``events`` and write out every dirty page, so the next phase starts from the same state."""
    await conn.execute("TRUNCATE events")
    await conn.execute("CHECKPOINT")


async def _copy_phase(
    dsn: str, tails: list[tuple[Any, ...]], batch_rows: int, seconds: float, meter: CpuMeter
) -> Phase:
    """Raw COPY into ``events`` from ``COPY_CONNECTIONS`` connections for ``seconds``."""
    connections = [await asyncpg.connect(dsn) for _ in range(COPY_CONNECTIONS)]
    max_batches = math.ceil(MAX_COPY_ROWS_PER_S * seconds / batch_rows / COPY_CONNECTIONS)

    async def load(conn: asyncpg.Connection, prefix: str, deadline: float) -> int:
        rows = 0
        for _ in range(max_batches):
            records = workload.copy_batch(prefix, rows, batch_rows, tails)
            await conn.copy_records_to_table("events", records=records, columns=COLUMNS)
            rows += batch_rows
            if time.perf_counter() >= deadline:
                break
        return rows

    try:
        before = meter.sample()
        started = time.perf_counter()
        counts = await asyncio.gather(
            *(load(conn, f"copy{batch_rows}-{i}", started + seconds) for i, conn in enumerate(connections))
        )
        elapsed = time.perf_counter() - started
        after = meter.sample()
    finally:
        for conn in connections:
            await conn.close()
    return Phase(sum(counts) / elapsed, "rows/s", elapsed, before.cores_until(after, elapsed))


async def _load_phase(meter: CpuMeter, run: Awaitable[LoadResult], events_rate: bool) -> Phase:
    """Run one HTTP load coroutine, measuring CPU around it; the rate is accepted events/s or good requests/s."""
    before = meter.sample()
    result = await run
    after = meter.sample()
    elapsed = max(result.elapsed_s, 1e-9)
    if events_rate:
        return Phase(result.accepted / elapsed, "events/s", elapsed, before.cores_until(after, elapsed), result)
    good = result.requests - sum(result.errors.values())
    return Phase(good / elapsed, "requests/s", elapsed, before.cores_until(after, elapsed), result)


def _server_env(dsn: str, params: Parameters, ingest_port: int) -> dict[str, str]:
    deployment = {"WARROOM_INGEST_PROCESSES": str(params.ingest_processes), "WARROOM_INGEST_PORT": str(ingest_port)}
    return {**os.environ, "DATABASE_URL": dsn, **SERVER_ENV, **deployment}


def _start_server(env: dict[str, str], port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """``warroom serve`` as a child process, its output kept in ``workdir/server.log``."""
    with open(workdir / "server.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", loadclient.HOST, "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _requests(prefix: str, token: str, events: list[dict[str, Any]], per_request: int, count: int) -> Iterator[bytes]:
    """``count`` POSTs of ``per_request`` events each, pre-encoded from ``events``; ids unique under ``prefix``."""

    def wrap(body: bytes) -> bytes:
        return loadclient.post_request(EVENTS_PATH, token, body)

    batch = per_request > 1
    templates = [
        workload.StampedRequest(prefix, events[i : i + per_request], batch, wrap)
        for i in range(0, len(events) - per_request + 1, per_request)
    ]
    return workload.stamped(templates, count)


async def _measure(params: Parameters, workdir: Path, dsn: str, postmaster_pid: int) -> dict[str, Any]:
    meter = CpuMeter(postmaster_pid)
    events = workload.sample_events(POOL_EVENTS)
    tails = workload.storage_tails(events)
    conn = await asyncpg.connect(dsn)
    try:
        version = await conn.fetchval("SHOW server_version")
        settings = {
            name: await conn.fetchval(f"SELECT current_setting('{name}')") for name in harness.POSTGRES_SETTINGS
        }
        machine = harness.machine(version, settings)

        copy: dict[int, Phase] = {}
        for batch_rows in COPY_BATCH_ROWS:
            await _reset(conn)
            label = f"[1/{PHASES}] raw COPY: {COPY_CONNECTIONS} connections x {batch_rows:,}-row batches"
            with harness.step(label) as notes:
                copy[batch_rows] = await _copy_phase(dsn, tails, batch_rows, params.seconds, meter)
                notes.append(f"{copy[batch_rows].rate:,.0f} rows/s")
        row_bytes = await conn.fetchval(
            f"SELECT avg(pg_column_size(e.*))::int FROM (SELECT * FROM events LIMIT {ROW_SIZE_SAMPLE}) e"
        )
        await _reset(conn)
        _, token = await keys.create(conn, KEY_NAME, "ingest")
        await store.save(conn, workload.campaign())  # the server's engine counts only defined campaigns

        tier: TierRun | None = None
        if params.ingest_processes:
            tier = await _tier_phases(params, dsn, token, events, tails, conn, meter, workdir)
            await _reset(conn)
        else:
            print(
                f"[2/{PHASES}] HTTP batch ingest, ingest tier alone ... skipped: --ingest-processes 0", file=sys.stderr
            )

        port, ingest_port = harness.free_port(), harness.free_port()
        server_env = _server_env(dsn, params, ingest_port)
        server = _start_server(server_env, port, workdir)
        meter.server_pids = frozenset({server.pid})
        try:
            with harness.step(f"starting the server on {loadclient.HOST}:{port}: {params.deployment}"):
                await harness.wait_ready(server, port, workdir)
            target = ingest_port if params.ingest_processes else port
            http = await _http_phases(params, target, token, events, conn, meter)
        finally:
            with harness.step(f"[6/{PHASES}] stopping the server (SIGTERM) and counting stored events") as notes:
                exit_code = harness.stop_server(server)
                stored = await conn.fetchval("SELECT count(*) FROM events")
                notes.append(f"{stored:,} stored")
    finally:
        await conn.close()

    accepted = sum(phase.load.accepted for phase in http.values() if phase.load)
    server_settings = Settings.from_env(server_env)
    return _report(params, server_settings, machine, copy, tier, http, row_bytes, events, accepted, stored, exit_code)


@dataclass
class TierRun:
    """The ingest tier alone: its measured batch phase and what it stored."""

    batch: Phase
    accepted: int
    stored: int
    rows_read: int
    """Events the stand-in for the remote engine read: every stored one, or the engine would miss some."""
    errors: int
    """Requests of the warm-up and the batch phase not answered 202 with every event accepted."""


async def _tier_phases(
    params: Parameters,
    dsn: str,
    token: str,
    events: list[dict[str, Any]],
    tails: list[tuple[Any, ...]],
    conn: asyncpg.Connection,
    meter: CpuMeter,
    workdir: Path,
) -> TierRun:
    """Warm-up and batch phase against ``--ingest-processes`` ingest-role processes on their own, with the
    metrics engine's reads running beside them (the full server being on another host)."""
    if params.history_rows:
        await _load_history(conn, tails, params.history_rows)
    history_seq = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM events")
    port = harness.free_port()
    environ = _server_env(dsn, params, port)
    reads: asyncio.subprocess.Process | None = None
    out: bytes | None = None
    log = await asyncio.to_thread(open, workdir / "ingest-tier.log", "wb")
    with log:
        processes = IngestProcesses(Settings.from_env(environ), dsn, environ, output=log)
        try:
            label = (
                f"starting the ingest tier alone on {loadclient.HOST}:{port}: "
                f"{params.ingest_processes} ingest processes and the engine's reads"
            )
            with harness.step(label):
                await processes.start()
                reads = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.engine_reads",
                    dsn,
                    str(history_seq),
                    stdout=asyncio.subprocess.PIPE,
                    stderr=log,
                )
            meter.server_pids = frozenset({*processes.pids, reads.pid})
            warmup_requests = _requests("tierwarm", token, events, BATCH_EVENTS, len(events) // BATCH_EVENTS)
            batch_requests = _requests("tier", token, events, BATCH_EVENTS, _batch_count(params))
            with harness.step(f"warming up: every one of the {len(events):,} sample events posted once"):
                warmup = await loadclient.closed_loop(port, params.clients, WARMUP_MAX_S, warmup_requests, BATCH_EVENTS)
            await conn.execute("CHECKPOINT")
            label = (
                f"[2/{PHASES}] HTTP batch ingest, ingest tier alone: {params.clients} clients x {BATCH_EVENTS} events"
            )
            with harness.step(label) as notes:
                batch = await _load_phase(
                    meter,
                    loadclient.closed_loop(port, params.clients, params.seconds, batch_requests, BATCH_EVENTS),
                    events_rate=True,
                )
                notes.append(f"{batch.rate:,.0f} events/s")
        finally:
            with harness.step(
                "stopping the ingest tier (SIGTERM) and the engine's reads, counting stored events"
            ) as notes:
                await processes.stop()
                if reads is not None:
                    out = await _stop_engine_reads(reads)
                stored = await conn.fetchval("SELECT count(*) FROM events WHERE seq > $1", history_seq)
                notes.append(f"{stored:,} stored")
    if out is None:
        raise harness.BenchError(f"the engine's reads failed or hung after SIGTERM; see {workdir / 'ingest-tier.log'}")
    rows_read = msgspec.json.decode(out)["rows_read"]
    accepted = warmup.accepted + (batch.load.accepted if batch.load else 0)
    return TierRun(batch, accepted, stored, rows_read, sum(warmup.errors.values()) + batch.errors)


async def _load_history(conn: asyncpg.Connection, tails: list[tuple[Any, ...]], rows: int) -> None:
    """``rows`` events already stored before the tier phase (COPY, not timed), then VACUUM ANALYZE, as a
    table that has been taking events for a while would be."""
    with harness.step(f"loading {rows:,} events of history (COPY, not timed)") as notes:
        loaded = 0
        started = time.perf_counter()
        while loaded < rows:
            count = min(HISTORY_BATCH_ROWS, rows - loaded)
            await conn.copy_records_to_table(
                "events", records=workload.copy_batch("hist", loaded, count, tails), columns=COLUMNS
            )
            loaded += count
            if loaded % (10 * HISTORY_BATCH_ROWS) == 0 or loaded == rows:
                print(f"  {loaded:,} of {rows:,} ({time.perf_counter() - started:.0f}s)", file=sys.stderr, flush=True)
        await conn.execute("VACUUM ANALYZE events")
        size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('events'))")
        notes.append(f"events table with its indexes: {size}")


async def _stop_engine_reads(reads: asyncio.subprocess.Process) -> bytes | None:
    """SIGTERM, then its report once it has read what is left; None if it failed or hung (then killed)."""
    reads.send_signal(signal.SIGTERM)
    try:
        out, _ = await asyncio.wait_for(reads.communicate(), ENGINE_READS_STOP_TIMEOUT_S)
    except TimeoutError:
        reads.kill()
        await reads.wait()
        return None
    return out if reads.returncode == 0 else None


def _batch_count(params: Parameters) -> int:
    """Requests enough for any machine to post batches for ``--seconds``."""
    return math.ceil(MAX_BATCH_EVENTS_PER_S * params.seconds / BATCH_EVENTS)


async def _http_phases(
    params: Parameters,
    port: int,
    token: str,
    events: list[dict[str, Any]],
    conn: asyncpg.Connection,
    meter: CpuMeter,
) -> dict[str, Phase]:
    """Warm-up, batch, single closed-loop and single paced phases against the running server."""
    seconds = params.seconds
    batch_count = _batch_count(params)
    single_count = math.ceil(MAX_SINGLE_REQUESTS_PER_S * seconds)
    warmup_requests = _requests("warm", token, events, BATCH_EVENTS, len(events) // BATCH_EVENTS)
    batch_requests = _requests("batch", token, events, BATCH_EVENTS, batch_count)
    single_requests = _requests("single", token, events, 1, single_count)
    paced_requests = _requests("paced", token, events, 1, int(params.single_rate * seconds))
    phases: dict[str, Phase] = {}

    with harness.step(f"warming up: every one of the {len(events):,} sample events posted once"):
        warmup = loadclient.closed_loop(port, params.clients, WARMUP_MAX_S, warmup_requests, BATCH_EVENTS)
        phases["warmup"] = await _load_phase(meter, warmup, events_rate=True)
    await conn.execute("CHECKPOINT")
    with harness.step(
        f"[3/{PHASES}] HTTP batch ingest, all in one: {params.clients} clients x {BATCH_EVENTS} events"
    ) as notes:
        batch = loadclient.closed_loop(port, params.clients, seconds, batch_requests, BATCH_EVENTS)
        phases["batch"] = await _load_phase(meter, batch, events_rate=True)
        notes.append(f"{phases['batch'].rate:,.0f} events/s")

    await conn.execute("CHECKPOINT")
    with harness.step(f"[4/{PHASES}] single events, closed loop: {params.single_clients} clients") as notes:
        single = loadclient.closed_loop(port, params.single_clients, seconds, single_requests, 1)
        phases["single"] = await _load_phase(meter, single, events_rate=False)
        notes.append(f"{phases['single'].rate:,.0f} requests/s")

    await conn.execute("CHECKPOINT")
    rate, pool = params.single_rate, params.paced_connections
    with harness.step(f"[5/{PHASES}] single events, paced at {rate:,.0f} requests/s over {pool} connections") as notes:
        paced = loadclient.paced(port, pool, rate, seconds, paced_requests)
        phases["single_paced"] = await _load_phase(meter, paced, events_rate=False)
        notes.append(
            f"{phases['single_paced'].rate:,.0f} requests/s, p99 {phases['single_paced'].percentile_ms(99)} ms"
        )
    return phases


def _report(
    params: Parameters,
    server_settings: Settings,
    machine: dict[str, Any],
    copy: dict[int, Phase],
    tier: TierRun | None,
    http: dict[str, Phase],
    row_bytes: int,
    events: list[dict[str, Any]],
    accepted: int,
    stored: int,
    exit_code: int,
) -> dict[str, Any]:
    """The JSON report: headline numbers first, then per-phase details, workload, machine and parameters."""
    copy_1k, copy_10k = (copy[rows].rate for rows in COPY_BATCH_ROWS)
    copy_best = max(copy_1k, copy_10k)
    all_in_one, single, paced = http["batch"], http["single"], http["single_paced"]
    batch = tier.batch if tier is not None else all_in_one
    paced_p99 = paced.percentile_ms(99)
    ratio = batch.rate / copy_best
    props = [len(msgspec.json.encode(e["props"])) for e in events if "props" in e]
    sample_id = workload.event_id("batch", 0)
    measured = [*copy.values(), batch, all_in_one, single, paced]
    stored_match = stored == accepted and (tier is None or tier.stored == tier.accepted == tier.rows_read)
    # the most CPU other processes and the hypervisor took during any measured phase
    interference = max(phase.cpu_cores["other"] + phase.cpu_cores["steal"] for phase in measured)
    return {
        "copy_rows_per_s": round(copy_best),
        "copy_rows_per_s_1k": round(copy_1k),
        "copy_rows_per_s_10k": round(copy_10k),
        "batch_events_per_s": round(batch.rate),
        "batch_p50_ms": batch.percentile_ms(50),
        "batch_p99_ms": batch.percentile_ms(99),
        "batch_deployment": "ingest tier alone" if tier is not None else "all in one",
        "all_in_one_batch_events_per_s": round(all_in_one.rate),
        "all_in_one_batch_p99_ms": all_in_one.percentile_ms(99),
        "all_in_one_ratio_to_copy": round(all_in_one.rate / copy_best, 3),
        "single_requests_per_s": round(single.rate),
        "single_p50_ms": single.percentile_ms(50),
        "single_p99_ms": single.percentile_ms(99),
        "single_paced_rate": round(paced.rate, 1),
        "single_paced_p50_ms": paced.percentile_ms(50),
        "single_paced_p99_ms": paced_p99,
        "ratio_to_copy": round(ratio, 3),
        "accepted_events": accepted + (tier.accepted if tier else 0),
        "stored_events": stored + (tier.stored if tier else 0),
        "engine_reads_rows": tier.rows_read if tier else None,
        "stored_events_match": stored_match,
        "errors": sum(phase.errors for phase in http.values()) + (tier.errors if tier else 0),
        "deployment": params.deployment,
        "interference_cores": interference,
        "quiet_machine": interference <= QUIET_OTHER_CORES,
        "server_exit_code": exit_code,
        "server_stopped_cleanly": exit_code in (0, -signal.SIGTERM),
        "targets": {
            "batch_ratio_min": TARGET_BATCH_RATIO,
            "batch_ratio_met": ratio >= TARGET_BATCH_RATIO,
            "single_rate_min": TARGET_SINGLE_RATE,
            "single_rate_met": single.rate >= TARGET_SINGLE_RATE
            and params.single_rate >= TARGET_SINGLE_RATE
            and paced.rate >= RATE_TOLERANCE * params.single_rate,
            "single_p99_max_ms": TARGET_SINGLE_P99_MS,
            "single_p99_met": paced_p99 is not None and paced_p99 < TARGET_SINGLE_P99_MS and not paced.errors,
        },
        "phases": {
            **{f"copy_{rows // 1000}k": copy[rows].summary() for rows in COPY_BATCH_ROWS},
            **({"tier_batch": tier.batch.summary()} if tier else {}),
            **{name: phase.summary() for name, phase in http.items()},
        },
        "workload": {
            "event_json_bytes": round(sum(len(workload.encode([e], [sample_id], False)) for e in events) / len(events)),
            "props_json_bytes": round(sum(props) / len(props)),
            "stored_row_bytes": row_bytes,
            "type_weights": workload.TYPE_WEIGHTS,
        },
        "machine": machine,
        "code": harness.code_version(),
        "parameters": {
            "seconds": params.seconds,
            "clients": params.clients,
            "single_clients": params.single_clients,
            "single_rate": params.single_rate,
            "paced_connections": params.paced_connections,
            "history_rows": params.history_rows,
            "batch_events": BATCH_EVENTS,
            "copy_connections": COPY_CONNECTIONS,
            "copy_batch_rows": list(COPY_BATCH_ROWS),
            "server": {
                "writers": server_settings.writers,
                "group_events": server_settings.group_events,
                "queue_events": server_settings.queue_events,
                "rate_limit_per_s": server_settings.rate_limit_per_s,
                "ingest_processes": server_settings.ingest_processes,
            },
        },
    }


def _table(report: dict[str, Any]) -> str:
    """The report as a table for people."""
    m, p, t = report["machine"], report["phases"], report["targets"]
    clients = report["parameters"]["clients"]
    rows = [
        ("raw COPY, 1,000-row batches", p["copy_1k"]),
        ("raw COPY, 10,000-row batches", p["copy_10k"]),
        *([(f"HTTP batch, tier alone, {clients} x {BATCH_EVENTS}", p["tier_batch"])] if "tier_batch" in p else []),
        (f"HTTP batch, all in one, {clients} x {BATCH_EVENTS}", p["batch"]),
        (f"single, closed loop, {report['parameters']['single_clients']} clients", p["single"]),
        (f"single, paced at {report['parameters']['single_rate']:,.0f}/s", p["single_paced"]),
    ]
    lines = [
        f"Promo War-Room ingest benchmark: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"Python {m['python']}, PostgreSQL {m['postgresql']}",
        f"all-in-one phases posted to {report['deployment']}; server cores include every server process"
        + (" (tier alone: the ingest processes and the engine's reads)" if "tier_batch" in p else ""),
        "",
        f"{'phase':<34} {'rate':>20} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}   "
        "cores: server / pg / bench / other / irq / steal",
    ]
    for name, phase in rows:
        cpu = phase["cpu_cores"]
        p50 = f"{phase['p50_ms']:.1f}" if phase.get("p50_ms") is not None else "-"
        p99 = f"{phase['p99_ms']:.1f}" if phase.get("p99_ms") is not None else "-"
        errors = sum(phase.get("errors", {}).values())
        lines.append(
            f"{name:<34} {phase['rate']:>11,.0f} {phase['unit']:<8} {p50:>8} {p99:>8} {errors:>7}   "
            + " / ".join(f"{cpu[part]:.2f}" for part in ("server", "postgres", "bench", "other", "irq", "steal"))
        )

    def verdict(met: bool) -> str:
        return "met" if met else "MISSED"

    lines += [
        "",
        *(
            [
                f"the tier phase ran with {report['parameters']['history_rows']:,} events already stored;"
                " raw COPY on an empty table"
            ]
            if report["parameters"]["history_rows"]
            else []
        ),
        f"HTTP batch / raw COPY, {report['batch_deployment']}: {report['ratio_to_copy']:.0%} "
        f"(target >= {t['batch_ratio_min']:.0%}: {verdict(t['batch_ratio_met'])})",
        *(
            [
                f"HTTP batch / raw COPY, all in one (the metrics engine on the same cores): "
                f"{report['all_in_one_ratio_to_copy']:.0%}"
            ]
            if "tier_batch" in p
            else []
        ),
        f"single events: {report['single_requests_per_s']:,} requests/s closed loop, "
        f"{report['single_paced_rate']:,.0f} of {report['parameters']['single_rate']:,.0f} scheduled/s paced "
        f"(target >= {t['single_rate_min']:,.0f}/s: {verdict(t['single_rate_met'])})",
        f"single events at the paced rate: p99 {report['single_paced_p99_ms']} ms "
        f"(target < {t['single_p99_max_ms']:g} ms: {verdict(t['single_p99_met'])})",
        f"stored events: {report['stored_events']:,} of {report['accepted_events']:,} accepted"
        + (
            f", {report['engine_reads_rows']:,} read by the engine's reads in the tier phase"
            if report["engine_reads_rows"] is not None
            else ""
        )
        + f" ({'match' if report['stored_events_match'] else 'MISMATCH'})",
    ]
    if not report["quiet_machine"]:
        lines.append(
            f"WARNING: other processes and steal took up to {report['interference_cores']:.2f} cores"
            " during a measured phase; "
            "these numbers understate what this machine does when quiet"
        )
    return "\n".join(lines)


def run(params: Parameters) -> dict[str, Any]:
    """The whole benchmark on a fresh embedded PostgreSQL in a temporary directory, removed afterwards."""
    return harness.on_fresh_database(functools.partial(_measure, params))


def main(args: argparse.Namespace) -> None:
    """Entry point of ``warroom bench ingest``."""
    report = harness.report(args, lambda: run(Parameters.from_args(args)), _table)
    if not report["stored_events_match"]:
        sys.exit(
            "warroom bench: the events table does not hold exactly the accepted events"
            " (or the engine's reads missed some)"
        )
