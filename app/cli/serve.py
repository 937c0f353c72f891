"""``warroom serve``: run the API server (the whole product, or one ingest process of several)."""

from __future__ import annotations

import argparse
import contextlib
import sys

from app.core.settings import Settings

STARTUP_FAILURE = 3
"""Exit status when the server could not start (uvicorn's own convention)."""


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``serve`` to the ``warroom`` commands."""
    command = commands.add_parser("serve", help="run the API server (embedded PostgreSQL unless DATABASE_URL is set)")
    command.add_argument("--host", help="listen address (default WARROOM_HOST or 127.0.0.1)")
    command.add_argument("--port", type=int, help="listen port (default WARROOM_PORT or 8000)")
    command.add_argument(
        "--role",
        choices=("all", "ingest"),
        help="all: the whole product; ingest: only the ingest endpoints, several processes may share a port "
        "(default WARROOM_ROLE or all)",
    )
    command.add_argument(
        "--ready-fd", type=int, help=argparse.SUPPRESS
    )  # set by the full server for its ingest processes
    command.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    if args.role is not None:
        settings = settings.model_copy(update={"role": args.role})
    serve(settings, args.host, args.port, args.ready_fd)


def check_configuration(settings: Settings) -> None:
    """Stop before anything starts when a campaign, rule or notify file is invalid: one line naming
    the file, line and field, instead of a start-up traceback."""
    from alerts.evaluation.rules import load_directory
    from alerts.notify import notifyfile
    from app.campaigns import model as campaigns
    from app.core.configfile import ConfigError

    try:
        campaigns.load_directory(settings.campaigns_dir)
        load_directory(settings.rules_dir)
        notifyfile.load(settings.notify_file)
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        sys.exit(f"warroom: {exc}")


def serve(settings: Settings, host: str | None, port: int | None, ready_fd: int | None = None) -> None:
    """Run the app of ``settings.role`` until SIGTERM/SIGINT, then drain gracefully.

    An ingest-role process listens on its own ``SO_REUSEPORT`` socket, so several share one port.
    """
    from app.api.connections import server_config
    from app.core import logs
    from app.ingest.tier import follow_parent, reuseport_socket, signal_ready
    from app.server import Server, create_app

    ingest = settings.role == "ingest"
    if not ingest:
        check_configuration(settings)
    log_config = logs.configure(settings.log_level, settings.log_format, settings.access_log)
    host, port = host or settings.host, port or settings.port
    if ready_fd is not None:
        follow_parent()
    app = create_app(settings, (lambda: signal_ready(ready_fd)) if ready_fd is not None else lambda: None)
    config = server_config(
        app, settings, host, port, loop="uvloop", log_config=log_config, access_log=settings.access_log
    )
    server = Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[reuseport_socket(host, port)] if ingest else None)
    if not server.started:
        sys.exit(STARTUP_FAILURE)
