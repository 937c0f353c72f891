"""The notify file as the running process reads it: its URLs expanded from this process's environment and each
one checked by Apprise (``alerts.notify.routing`` is the pure parser, given both)."""

from __future__ import annotations

import os
from pathlib import Path

from alerts.notify import channels, routing
from alerts.notify.routing import NotifyFile, Routing


def parse(text: str, source: str = "<text>") -> Routing:
    return routing.parse(text, source, environ=os.environ, understood=channels.understood)


def load(path: Path) -> Routing:
    """The routing in ``path``; a missing file means no chat channels (stream, on-call page and wall only)."""
    if not path.is_file():
        return Routing(NotifyFile())
    return parse(path.read_text(encoding="utf-8"), str(path))
