"""The ingest tier: processes that serve only the ingest endpoints, side by side on one port.

One Python process is one core. The full server (API, metrics engine, alerts,
wall) keeps its own process; ingest processes only validate and commit, so
they scale with cores. Each binds its own listening socket with
``SO_REUSEPORT`` and the kernel spreads new connections evenly across them
(uvicorn ``--workers`` shares one socket, which left keep-alive clients piled
on one worker). They need nothing from the full server: events get ``seq`` in
commit order and ``pg_notify`` wakes the engine, whichever process commits.

The full server starts ``WARROOM_INGEST_PROCESSES`` of them once its schema
is migrated, reports ready only after they are, restarts one that dies, and
forwards SIGTERM to them at shutdown so each drains what it has accepted.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

from app.core.settings import Settings
from app.core.supervision import Progress, Supervisor

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
"""How long a new ingest process may take to open its database pool and listen."""
SUPERVISE_EVERY_S = 1.0
PR_SET_PDEATHSIG = 1
"""prctl option: the signal a process gets when its parent exits."""
STOP_MARGIN_S = 5.0
"""Beyond the shutdown grace, how long to wait for a draining ingest process before killing it."""
SUPERVISE_LOOP = "ingest-processes"
SUPERVISE_STALL_AFTER_S = READY_TIMEOUT_S + 30.0
"""Replacing a process waits up to ``READY_TIMEOUT_S`` for it."""


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` that other processes may bind too; uvicorn listens on it once started."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(False)
    return sock


def follow_parent() -> None:
    """In an ingest process the full server started: receive SIGTERM (and so drain) when that server
    dies, even by SIGKILL, instead of holding the port as an orphan. Linux only, as is SO_REUSEPORT's
    balancing; the parent's pid would be 1 if it died before this call."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        log.warning("cannot follow the parent process: %s", os.strerror(ctypes.get_errno()))
    elif os.getppid() == 1:
        os.kill(os.getpid(), signal.SIGTERM)


def signal_ready(fd: int) -> None:
    """Tell the parent this ingest process is serving (one byte on the pipe it passed us)."""
    os.write(fd, b"1")
    os.close(fd)


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    ready_fd: int


class IngestProcesses:
    """Starts, supervises and drains the ingest-role processes of a full server."""

    def __init__(
        self,
        settings: Settings,
        dsn: str,
        environ: Mapping[str, str] | None = None,
        output: IO[bytes] | None = None,
        supervisor: Supervisor | None = None,
    ) -> None:
        """``environ`` is the processes' environment before their own settings (default: this process's);
        ``output`` takes their stdout and stderr (default: this process's); ``supervisor`` runs the loop
        that replaces crashed processes."""
        self._settings = settings
        self._loop_supervisor = supervisor or Supervisor()
        self._output = output
        self._env = {
            **(os.environ if environ is None else environ),
            "DATABASE_URL": dsn,
            "WARROOM_ROLE": "ingest",
            "WARROOM_PORT": str(settings.ingest_port),
            "WARROOM_INGEST_PROCESSES": "0",
        }
        self._children: list[subprocess.Popen[bytes]] = []
        self._stopping = False

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self._children]

    async def start(self) -> None:
        """Start every ingest process and wait until each one serves (RuntimeError if one cannot)."""
        started = [self._spawn() for _ in range(self._settings.ingest_processes)]
        self._children = [child.process for child in started]
        await asyncio.gather(*(self._wait_ready(child) for child in started))
        self._loop_supervisor.start(SUPERVISE_LOOP, self._supervise, stall_after_s=SUPERVISE_STALL_AFTER_S)
        log.info("ingest processes ready", extra={"port": self._settings.ingest_port, "pids": self.pids})

    def terminate(self) -> None:
        """SIGTERM every ingest process: each stops accepting and drains what it has accepted."""
        self._stopping = True
        for process in self._children:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    async def stop(self) -> None:
        """``terminate``, then wait for every ingest process to finish, killing any that hang."""
        self.terminate()
        await self._loop_supervisor.stop(SUPERVISE_LOOP)
        await asyncio.gather(*(asyncio.to_thread(self._reap, process) for process in self._children))

    def _reap(self, process: subprocess.Popen[bytes]) -> None:
        try:
            process.wait(self._settings.shutdown_grace_s + STOP_MARGIN_S)
        except subprocess.TimeoutExpired:
            log.error("ingest process %d did not stop after SIGTERM; killing it", process.pid)
            process.kill()
            process.wait()

    def _spawn(self) -> _Child:
        read_fd, write_fd = os.pipe()
        command = [sys.executable, "-m", "app.cli", "serve", "--role", "ingest", "--ready-fd", str(write_fd)]
        try:
            process = subprocess.Popen(
                command,
                env=self._env,
                pass_fds=(write_fd,),
                stdout=self._output,
                stderr=subprocess.STDOUT if self._output is not None else None,
            )
        finally:
            os.close(write_fd)
        return _Child(process, read_fd)

    async def _wait_ready(self, child: _Child) -> None:
        try:
            answer = await asyncio.wait_for(asyncio.to_thread(os.read, child.ready_fd, 1), READY_TIMEOUT_S)
        except TimeoutError:
            child.process.kill()
            answer = b""
        finally:
            os.close(child.ready_fd)
        if not answer:
            raise RuntimeError(f"ingest process {child.process.pid} did not start (exit status {child.process.poll()})")

    async def _supervise(self, progress: Progress) -> None:
        """Replace an ingest process that exited on its own (a crash), so the tier keeps its size."""
        while True:
            await asyncio.sleep(SUPERVISE_EVERY_S)
            progress()
            for index, process in enumerate(self._children):
                if process.poll() is None or self._stopping:
                    continue
                log.error("ingest process %d exited with status %d; starting another", process.pid, process.returncode)
                child = self._spawn()
                self._children[index] = child.process
                try:
                    await self._wait_ready(child)
                except RuntimeError as exc:
                    log.error("%s", exc)
