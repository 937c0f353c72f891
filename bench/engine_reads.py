"""The metrics engine's reads, without the engine: ``bench ingest``'s stand-in for a full server on another host.

When the ingest tier has a machine to itself, the full server (metrics
engine, alerts, wall) runs elsewhere, yet it still reads every committed
event from this PostgreSQL. This process does exactly those reads — the
engine's ``read_tail``, up to ``TAIL_BATCH`` rows at a time, at most every
``TAIL_MIN_GAP_S`` — and drops the rows, so PostgreSQL here does the work a
remote engine asks of it. Decoding the rows costs CPU here too, which a remote
engine would spend on its own host: the measurement errs against the tier.

Run as ``python -m bench.engine_reads DSN [AFTER_SEQ]`` (a caught-up engine starts at the newest
event); on SIGTERM it reads what is
left and prints ``{"rows_read": n}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

import asyncpg
import msgspec
import uvloop

from app.metrics.live import TAIL_BATCH, TAIL_MIN_GAP_S, read_tail


async def read_until_stopped(dsn: str, after_seq: int = 0) -> int:
    """Read every event after ``after_seq`` as the engine's tail does until SIGTERM, then to the end;
    return the rows read."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    conn = await asyncpg.connect(dsn)
    last_seq, rows_read = after_seq, 0
    try:
        while True:
            stopping = stop.is_set()
            rows = await read_tail(conn, last_seq, TAIL_BATCH)
            if rows:
                last_seq = rows[-1][0]
                rows_read += len(rows)
            if len(rows) == TAIL_BATCH:
                continue
            if stopping:
                return rows_read
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TAIL_MIN_GAP_S)
    finally:
        await conn.close()


def main() -> None:
    rows_read = uvloop.run(read_until_stopped(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0))
    sys.stdout.write(msgspec.json.encode({"rows_read": rows_read}).decode() + "\n")


if __name__ == "__main__":
    main()
