"""A minimal HTTP/1.1 keep-alive load generator on raw asyncio streams, for 127.0.0.1 only.

On a 2-core machine the load generator shares the CPU with the server and
PostgreSQL, so every microsecond it spends is taken from what it measures.
httpx builds request and response objects per call; this client writes
pre-encoded request bytes and reads only the status line, the headers and a
Content-Length body. Two loops drive it: a closed loop (N clients, each sends
when its previous answer arrived) for throughput, and a paced open loop that
times every request from its scheduled send time, so a slow server cannot
hide its stalls by slowing the client down (coordinated omission).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

HOST = "127.0.0.1"
CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 30.0
"""Grace after a phase's last send; longer than the server's commit timeout (10 s), so its 503s arrive first."""
PROBE_TIMEOUT_S = 5.0
PACED_START_DELAY_S = 0.05
"""The first paced request is scheduled this far ahead, after every worker has started."""
ACCEPTED_STATUS = 202
HEADER_END = b"\r\n\r\n"
CONTENT_LENGTH = b"content-length:"


class ProtocolError(Exception):
    """The server answered with something this minimal client does not read (no Content-Length)."""


ANSWER_FAILURES = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError)
"""Ways a request can end without an answer; each is counted as an error and ends that connection's loop."""


class _Report(msgspec.Struct):
    """The part of the ingest answer the benchmark checks."""

    accepted: int


def post_request(path: str, token: str, body: bytes) -> bytes:
    """The complete bytes of a keep-alive ``POST`` of a JSON ``body``."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def get_request(path: str) -> bytes:
    """The complete bytes of a keep-alive ``GET``."""
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


class Connection:
    """One keep-alive connection; requests are sent one at a time (no pipelining)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), CONNECT_TIMEOUT_S)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request``; return the answer's status code and body."""
        self._writer.write(request)
        head = await self._reader.readuntil(HEADER_END)
        status = int(head[9:12])
        lower = head.lower()
        start = lower.find(CONTENT_LENGTH)
        if start < 0:
            raise ProtocolError(f"answer without Content-Length: {head[:200]!r}")
        start += len(CONTENT_LENGTH)
        length = int(lower[start : lower.index(b"\r\n", start)])
        body = await self._reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self._writer.close()


@dataclass
class LoadResult:
    """What one load phase did; latencies are in seconds, one per answered request."""

    sent: int = 0
    requests: int = 0
    """Requests that ended: answered, failed, or still unanswered when the phase's time limit struck."""
    accepted: int = 0
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    def record(self, status: int, body: bytes, expected: int, latency_s: float) -> None:
        """Count one answer; anything but 202 with all ``expected`` events accepted is an error."""
        self.requests += 1
        self.latencies_s.append(latency_s)
        if status != ACCEPTED_STATUS:
            self.errors[f"HTTP {status}"] += 1
            return
        accepted = msgspec.json.decode(body, type=_Report).accepted
        self.accepted += accepted
        if accepted != expected:
            self.errors["not all accepted"] += 1

    def fail(self, exc: BaseException) -> None:
        """Count a request that got no answer."""
        self.requests += 1
        self.errors[type(exc).__name__] += 1

    def percentile_ms(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100, nearest rank) of the latencies in milliseconds."""
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[rank - 1] * 1000


async def _open_all(port: int, count: int) -> list[Connection]:
    return list(await asyncio.gather(*(Connection.open(port) for _ in range(count))))


async def _run_bounded(workers: list[Coroutine[Any, Any, None]], result: LoadResult, limit_s: float) -> None:
    """Await ``workers`` for at most ``limit_s``; requests still unanswered then count as errors.

    One limit for the whole phase instead of one per request: a per-request
    ``asyncio.timeout`` costs more client CPU than the rest of the request.
    """
    try:
        async with asyncio.timeout(limit_s):
            await asyncio.gather(*workers)
    except TimeoutError:
        unanswered = result.sent - result.requests
        result.errors[f"no answer within {limit_s:g}s"] += unanswered
        result.requests += unanswered


async def closed_loop(port: int, clients: int, seconds: float, requests: Iterator[bytes], events: int) -> LoadResult:
    """``clients`` connections, each sending the next request as soon as its previous one is answered.

    Stops sending after ``seconds`` or when ``requests`` runs out; the elapsed
    time runs until the last answer arrived. A connection that fails stops.
    """
    connections = await _open_all(port, clients)
    result = LoadResult()

    async def client(connection: Connection, deadline: float) -> None:
        for request in requests:
            started = time.perf_counter()
            result.sent += 1
            try:
                status, body = await connection.exchange(request)
            except ANSWER_FAILURES as exc:
                result.fail(exc)
                return
            finished = time.perf_counter()
            result.record(status, body, events, finished - started)
            if finished >= deadline:
                return

    started = time.perf_counter()
    try:
        workers = [client(c, started + seconds) for c in connections]
        await _run_bounded(workers, result, seconds + REQUEST_TIMEOUT_S)
    finally:
        result.elapsed_s = time.perf_counter() - started
        for connection in connections:
            connection.close()
    return result


async def paced(port: int, connections: int, rate: float, seconds: float, requests: Iterator[bytes]) -> LoadResult:
    """Requests scheduled at ``rate`` per second for ``seconds`` (or until ``requests`` runs out), over a pool of
    ``connections``.

    Request ``i`` is due at ``start + i / rate``. A free connection takes the
    next due request; when all are busy the request waits, and that wait is
    part of its latency, which is measured from the due time. The elapsed time
    runs from the first due time to the last answer.
    """
    count = int(rate * seconds)
    pool = await _open_all(port, connections)
    result = LoadResult()
    next_index = 0
    start = time.perf_counter() + PACED_START_DELAY_S
    last_answer = start

    async def worker(connection: Connection) -> None:
        nonlocal next_index, last_answer
        while next_index < count:
            due = start + next_index / rate
            next_index += 1
            request = next(requests, None)
            if request is None:
                return
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            result.sent += 1
            try:
                status, body = await connection.exchange(request)
            except ANSWER_FAILURES as exc:
                result.fail(exc)
                return
            last_answer = time.perf_counter()
            result.record(status, body, 1, last_answer - due)

    try:
        await _run_bounded([worker(c) for c in pool], result, PACED_START_DELAY_S + seconds + REQUEST_TIMEOUT_S)
    finally:
        result.elapsed_s = max(last_answer - start, 0.0)
        for connection in pool:
            connection.close()
    return result


async def get_status(port: int, path: str) -> int:
    """The status code of one ``GET`` on a fresh connection, within ``PROBE_TIMEOUT_S`` (to poll readiness)."""
    connection = await Connection.open(port)
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            status, _ = await connection.exchange(get_request(path))
        return status
    finally:
        connection.close()
