"""``warroom bench``: the benchmarks, each a sub-command that prints a table (or with ``--json`` one JSON object).

The benchmark code lives in the ``bench`` package beside ``app``, which the runtime image does not ship; it is
imported only when a benchmark runs.
"""

from __future__ import annotations

import argparse
import importlib

from app.core.settings import Settings

BENCH_PACKAGE = "bench"
"""Each ``warroom bench NAME`` runs ``main(args)`` of the module ``bench.NAME``."""


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``bench ingest|metrics|alerts|notify|wall|backtest|cpu`` to the ``warroom`` commands."""
    b = commands.add_parser("bench", help="benchmarks (results belong in bench/RESULTS.md)")
    b_sub = b.add_subparsers(dest="bench_command", required=True)

    def bench(name: str, help: str) -> argparse.ArgumentParser:
        """A benchmark's sub-command: every one prints a table, or with --json one JSON object."""
        command = b_sub.add_parser(name, help=help)
        command.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
        command.set_defaults(handler=_run_benchmark)
        return command

    bi = bench("ingest", "raw COPY vs HTTP batch vs single-event ingest on a fresh embedded database")
    bi.add_argument("--seconds", type=float, default=8.0, help="duration of each measured phase")
    bi.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients for the batch phase")
    bi.add_argument("--single-clients", type=int, default=32, help="concurrent HTTP clients for the single-event phase")
    bi.add_argument(
        "--single-rate", type=float, default=2000.0, help="paced request rate for the latency-at-rate phase"
    )
    bi.add_argument(
        "--ingest-processes",
        type=int,
        default=2,
        help="WARROOM_INGEST_PROCESSES of the measured server; the HTTP phases post to their port "
        "(0: the server alone)",
    )
    bi.add_argument(
        "--history-rows",
        type=int,
        default=0,
        help="events already stored (COPY, not timed) before the ingest-tier phase: how ingest holds up on a big table",
    )
    bm = bench("metrics", "live snapshot freshness under load, and the metrics engine's memory bound")
    bm.add_argument("--seconds", type=float, default=20.0, help="duration of the measured load")
    bm.add_argument("--rate", type=float, default=5000.0, help="events per second posted")
    bm.add_argument(
        "--memory-events", type=int, default=2_000_000, help="synthetic events fed to the engine in-process"
    )
    ba = bench("alerts", "stock event to firing alert latency under load with many rules")
    ba.add_argument("--seconds", type=float, default=45.0, help="duration of the measured load")
    ba.add_argument("--rate", type=float, default=5000.0, help="background events per second posted")
    ba.add_argument("--rules", type=int, default=500, help="static rules generated over the demo campaign")
    bn = bench("notify", "alert fired to websocket, and event POST to a webhook receiver")
    bn.add_argument("--trials", type=int, default=30, help="alerts fired one after another (one demo SKU each)")
    bn.add_argument("--rate", type=float, default=1000.0, help="background events per second posted meanwhile")
    bw = bench("wall", "event POST to the changed value on wall screens in headless Chromium, under load")
    bw.add_argument("--screens", type=int, default=20, help="wall screens connected, each its own websocket")
    bw.add_argument(
        "--rendered",
        type=int,
        default=2,
        help="of --screens, rendered in Chromium (the rest: websocket subscribers)",
    )
    bw.add_argument("--rate", type=float, default=5000.0, help="background events per second posted meanwhile")
    bw.add_argument("--probes", type=int, default=120, help="paid orders posted one by one, timed on every screen")
    bw.add_argument("--seconds", type=float, default=60.0, help="the probes are spread over this long")
    bb = bench("backtest", "warroom backtest over generated series: rows/s and time for 400,000 rows")
    bb.add_argument("--rows", type=int, default=400_000, help="rows in the generated corpus")
    bb.add_argument("--files", type=int, default=40, help="CSV files the rows are spread over")
    bc = bench("cpu", "CPU per event of validation and the metrics engine, in isolation")
    bc.add_argument("--events", type=int, default=100_000, help="workload events fed to the engine per repeat")
    bc.add_argument("--repeat", type=int, default=5, help="timed repeats (the median is reported)")


def _run_benchmark(args: argparse.Namespace, settings: Settings) -> None:
    importlib.import_module(f"{BENCH_PACKAGE}.{args.bench_command}").main(args)
