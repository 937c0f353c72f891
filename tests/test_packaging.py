"""The package as published: installed without extras into a clean virtualenv, as the Dockerfile installs it.

Catches a runtime dependency missing from ``pyproject.toml`` (the test extra and the
shared development venv hide it): every module of the shipped packages is
imported, every ``warroom`` sub-command answers ``--help``, and ``warroom serve``
starts, answers ``/healthz`` and ``/readyz``, and stops on SIGTERM.

The virtualenv with the dependencies is kept under ``.warroom/`` per dependency
list and Python version (the first run installs them from PyPI, 1–2 minutes);
the package itself is reinstalled from a copy of the working tree on every run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.helpers import wait_ready

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".warroom" / "clean-venv"
INSTALL_TIMEOUT_S = 600
COMMAND_TIMEOUT_S = 60
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
SHIPPED_PACKAGES = ("app", "alerts", "dashboard", "migrations")
DOCKER_COPIES = ("pyproject.toml", "README.md", "app", "alerts", "dashboard", "bench", "migrations")
"""What the Dockerfile's build stage copies and installs: built from a copy, so nothing else of the tree ships."""
NOT_IMPORTABLE = ("migrations.env", "app.cli.__main__")
"""Alembic runs ``migrations/env.py`` itself, inside a migration context; ``app.cli.__main__`` runs the command."""

LIST_MODULES = f"""
import importlib, pkgutil
for name in {SHIPPED_PACKAGES!r}:
    package = importlib.import_module(name)
    print(name)
    for module in pkgutil.walk_packages(package.__path__, name + "."):
        print(module.name)
"""
LIST_COMMANDS = """
import argparse
from app.cli import parser

def walk(p, path):
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                print(" ".join(path + [name]))
                walk(sub, path + [name])

walk(parser(), [])
"""


def _dependencies() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def _clean_env() -> dict[str, str]:
    """This environment without anything that would let the source tree or the development venv stand in."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(
    args: list[str], cwd: Path, timeout: float = COMMAND_TIMEOUT_S, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env={**_clean_env(), **env}, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin directory of a virtualenv holding the runtime dependencies alone and this working tree installed."""
    dependencies = _dependencies()
    key = hashlib.sha256("\n".join([sys.version, *dependencies]).encode()).hexdigest()[:16]
    venv = VENVS / key
    bin_dir = venv / "bin"
    cwd = tmp_path_factory.mktemp("clean-install")
    if not (venv / ".dependencies-installed").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=COMMAND_TIMEOUT_S)
        requirements = cwd / "requirements.txt"
        requirements.write_text("\n".join(dependencies) + "\n")
        done = _run([str(bin_dir / "pip"), "install", "-r", str(requirements)], cwd, INSTALL_TIMEOUT_S)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        (venv / ".dependencies-installed").touch()
    source = cwd / "src"
    source.mkdir()
    for name in DOCKER_COPIES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    done = _run(
        [str(bin_dir / "pip"), "install", "--no-deps", "--force-reinstall", str(source)], cwd, INSTALL_TIMEOUT_S
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return bin_dir


def test_every_shipped_module_imports_with_the_runtime_dependencies_alone(installed, tmp_path):
    listed = _run([str(installed / "python"), "-P", "-c", LIST_MODULES], tmp_path)
    assert listed.returncode == 0, listed.stderr[-3000:]
    modules = [m for m in listed.stdout.split() if m not in NOT_IMPORTABLE]
    assert "app.cli" in modules and "app.drill.demo" in modules and "dashboard.wall" in modules
    check = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n    print(name)"
    imported = _run([str(installed / "python"), "-P", "-c", check, *modules], tmp_path)
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert imported.stdout.split() == modules
    location = _run([str(installed / "python"), "-P", "-c", "import app; print(app.__file__)"], tmp_path)
    assert "site-packages" in location.stdout, location.stdout


def test_every_warroom_command_answers_help(installed, tmp_path):
    listed = _run([str(installed / "python"), "-P", "-c", LIST_COMMANDS], tmp_path)
    assert listed.returncode == 0, listed.stderr[-3000:]
    commands = [line.split() for line in listed.stdout.splitlines()]
    assert ["serve"] in commands and ["simulate"] in commands and ["keys", "create"] in commands
    every = [[], *commands]
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # one Python start-up each: side by side on every core
        answers = pool.map(lambda command: _run([str(installed / "warroom"), *command, "--help"], tmp_path), every)
        for command, helped in zip(every, answers, strict=True):
            assert helped.returncode == 0, (command, helped.stderr[-3000:])
            assert "usage: warroom" in helped.stdout


def test_warroom_serve_starts_and_stops_from_the_clean_install(installed, tmp_path, dsn):
    port = free_port()
    env = {
        **_clean_env(),
        "DATABASE_URL": dsn,
        "WARROOM_HOST": "127.0.0.1",
        "WARROOM_PORT": str(port),
        "WARROOM_DATA_DIR": str(tmp_path / "data"),
        "WARROOM_CAMPAIGNS_DIR": str(tmp_path / "none"),
        "WARROOM_RULES_DIR": str(tmp_path / "none"),
        "WARROOM_NOTIFY_FILE": str(tmp_path / "none.yaml"),
    }
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [str(installed / "warroom"), "serve"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        ready = wait_ready(f"http://127.0.0.1:{port}", START_TIMEOUT_S, alive=lambda: process.poll() is None)
        assert ready is not None and ready.status_code == 200, (tmp_path / "serve.log").read_text()[-3000:]
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=STOP_TIMEOUT_S)
        log.flush()
        lines = (tmp_path / "serve.log").read_text()
        assert returncode in (0, -signal.SIGTERM), lines[-3000:]  # uvicorn re-raises the signal once it has drained
        assert '"msg": "stopped"' in lines, lines[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
