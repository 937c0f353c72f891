"""Logs on stderr: human-readable text when stderr is a terminal, one JSON object per line otherwise.

``WARROOM_LOG_FORMAT`` forces either (``auto`` decides by the terminal). Request logs (uvicorn's access log and
``httpx``'s line per request a drill or a notification channel makes) stay off unless ``WARROOM_ACCESS_LOG`` is set:
at thousands of requests a second they drown everything else.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

LogFormat = Literal["auto", "json", "text"]
REQUEST_LOGGERS = ("httpx", "httpcore")
"""HTTP clients' per-request loggers: quiet (warnings only) unless request logs are asked for."""
WEBSOCKET_LOGGER = "uvicorn.error"
WEBSOCKET_LINES = ("connection open", "connection closed")
WEBSOCKET_REQUEST = '%s - "WebSocket %s"'
"""uvicorn logs each websocket's handshake (its URL, a screen's ``?token=`` included) and its opening and closing
on its error logger, not its access log: these are request lines too."""
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "color_message"}


def _extras(record: logging.LogRecord) -> dict[str, object]:
    """The record's ``extra={...}`` fields."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """Renders a record and any ``extra={...}`` fields as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """A record as a person reads it in a terminal: ``18:02:11 INFO  app.server: ready  version=0.1.0`` (local time,
    the ``extra`` fields as ``name=value`` after the message, a traceback below it)."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{moment} {record.levelname:<7} {record.name}: {record.getMessage()}"
        extras = _extras(record)
        if extras:
            line += "  " + " ".join(f"{k}={v}" for k, v in extras.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class RequestLines(logging.Filter):
    """Drops uvicorn's line per websocket connection (a wall screen or an alert stream connecting)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != WEBSOCKET_LOGGER or not isinstance(record.msg, str):
            return True
        return not (record.msg in WEBSOCKET_LINES or record.msg.startswith(WEBSOCKET_REQUEST))


def resolved_format(fmt: LogFormat, stream: TextIO) -> Literal["json", "text"]:
    """``auto`` is text for a terminal and JSON for anything else (a file, a pipe, a log collector)."""
    if fmt != "auto":
        return fmt
    return "text" if stream.isatty() else "json"


def configure(level: str, fmt: LogFormat, access_log: bool = False) -> dict:
    """Configure the root logger; return a uvicorn ``log_config`` that routes its loggers through it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if resolved_format(fmt, sys.stderr) == "json" else TextFormatter())
    if not access_log:
        handler.addFilter(RequestLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    for name in REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if access_log else logging.WARNING)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {
            name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
