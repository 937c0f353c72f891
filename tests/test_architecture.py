"""The architecture holds: dependencies point one way, and the pure modules stay pure.

``lint-imports`` checks the import contracts in pyproject.toml (the layers, and that the pure modules reach
no database driver, HTTP client or server, nor Apprise, even indirectly). What an import contract cannot
see is checked here: the pure modules read no environment and no clock (they are given both), and
importing the notification channels changes no logging.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PURITY_CONTRACT = "Pure modules import no database driver, HTTP client or server, nor Apprise"
FORBIDDEN_READS = {
    ("os", "environ"),
    ("os", "getenv"),
    ("os", "environb"),
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "monotonic"),
    ("time", "monotonic_ns"),
    ("time", "perf_counter"),
    ("time", "perf_counter_ns"),
    ("time", "localtime"),
    ("time", "gmtime"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
}
"""``module.name`` (or ``from module import name``) that reads the process environment or a clock."""


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_import_contracts_hold():
    result = subprocess.run(
        [str(LINT_IMPORTS)], cwd=ROOT, env=_environment(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def pure_modules() -> list[str]:
    """The source modules of the purity contract, so this test and lint-imports check the same list."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["name"] == PURITY_CONTRACT)["source_modules"]


def environment_and_clock_reads(path: Path) -> list[str]:
    """Every place in ``path`` that names an environment or clock read, as ``line: module.name``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in FORBIDDEN_READS:
                found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            if (node.value.attr, node.attr) in FORBIDDEN_READS:
                found.append(f"{node.lineno}: {node.value.attr}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = node.module.rsplit(".", 1)[-1]
            found += [
                f"{node.lineno}: from {node.module} import {alias.name}"
                for alias in node.names
                if (module, alias.name) in FORBIDDEN_READS
            ]
    return found


def test_pure_modules_read_no_environment_and_no_clock():
    modules = pure_modules()
    assert "alerts.evaluation.evaluate" in modules and "app.metrics.engine" in modules
    reads = {
        module: found
        for module in modules
        if (found := environment_and_clock_reads(ROOT / Path(*module.split(".")).with_suffix(".py")))
    }
    assert reads == {}, "pure modules are given the environment and the clock, they do not read them"


def test_the_scan_sees_each_way_of_reading(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os, time, datetime\nfrom os import environ\nfrom datetime import date\n"
        "a = os.environ['X']\nb = time.monotonic()\nc = datetime.datetime.now()\nd = date.today()\n"
        "e = time.sleep\n"
    )
    assert sorted(environment_and_clock_reads(sample)) == [
        "2: from os import environ",
        "4: os.environ",
        "5: time.monotonic",
        "6: datetime.now",
        "7: date.today",
    ]


def test_importing_the_channels_changes_no_logging():
    code = (
        "import logging\n"
        "import alerts.notify.channels, alerts.notify.delivery, alerts.notify.notifyfile\n"
        "assert logging.getLogger('apprise').level == logging.NOTSET, logging.getLogger('apprise').level\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_environment(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
