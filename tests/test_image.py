"""The container image: the Dockerfile built with Debian's podman and run with its own CMD (``warroom serve``).

No container registry is reachable here, so the base image ``python:3.11-slim``
is stood in for by Debian bookworm's own Python 3.11 (debootstrap, from the
machine's Debian mirror, trusting what the machine trusts) and passed as the
Dockerfile's ``PYTHON_IMAGE``. This sandbox's kernel runs cgroups in hybrid
mode, which crun refuses: RUN steps use chroot isolation and the container
runs under runc with explicit ulimits and the host's network. ``make
image-tools`` installs podman, runc and debootstrap. The base image stays in
podman's storage, so only the first run pays for debootstrap (about 2 minutes);
the build takes about 1 minute more.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.helpers import wait_ready

ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "localhost/warroom-python:3.11"
IMAGE = "localhost/promo-warroom:test"
DEBIAN_SUITE = "bookworm"
BASE_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
RUN_OPTIONS = ["--runtime", "runc"]
CONTAINER_OPTIONS = ["--network", "host", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"]
BUILD_TIMEOUT_S = 900
START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 40


def _podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
    return done


def _debian_mirror() -> str:
    """The mirror this machine's apt uses (the only place Debian packages can come from here)."""
    for line in DEBIAN_SOURCES.read_text().splitlines():
        if line.startswith("URIs:"):
            return line.split()[1]
    raise AssertionError(f"no URIs line in {DEBIAN_SOURCES}")


def _ensure_base_image() -> None:
    if _podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return
    with tempfile.TemporaryDirectory(prefix="warroom-base-") as directory:
        rootfs = Path(directory) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={BASE_PACKAGES}",
                DEBIAN_SUITE,
                str(rootfs),
                _debian_mirror(),
            ],
            check=True,
            capture_output=True,
            timeout=BUILD_TIMEOUT_S,
        )
        shutil.copy2(HOST_CA_BUNDLE, rootfs / HOST_CA_BUNDLE.relative_to("/"))
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["podman", "import", "-", BASE_IMAGE], stdin=tar.stdout, capture_output=True, timeout=BUILD_TIMEOUT_S
        )
        assert tar.wait() == 0 and imported.returncode == 0, imported.stderr[-3000:]


@pytest.fixture(scope="module")
def image() -> str:
    _ensure_base_image()
    _podman(
        "build",
        "--isolation=chroot",
        "--network",
        "host",
        "--format",
        "docker",
        "--build-arg",
        f"PYTHON_IMAGE={BASE_IMAGE}",
        "-t",
        IMAGE,
        str(ROOT),
        timeout=BUILD_TIMEOUT_S,
    )
    _podman("image", "prune", "--force")  # the build stage and earlier builds' images, untagged now
    return IMAGE


def test_the_image_serves_with_its_own_cmd_and_stops_on_sigterm(image):
    """The image as documented: ``docker run`` with no DATABASE_URL runs the embedded PostgreSQL as the non-root
    user."""
    port = free_port()
    container = _podman(
        *RUN_OPTIONS, "run", "-d", *CONTAINER_OPTIONS, "-e", f"WARROOM_PORT={port}", image
    ).stdout.strip()
    try:
        ready = wait_ready(f"http://127.0.0.1:{port}", START_TIMEOUT_S, interval_s=0.5)
        logs = _podman(*RUN_OPTIONS, "logs", container, check=False)
        assert ready is not None and ready.status_code == 200, logs.stdout[-3000:] + logs.stderr[-3000:]
        assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "loops": "ok"}
        user = _podman(*RUN_OPTIONS, "inspect", "--format", "{{.Config.User}}", container).stdout.strip()
        assert user == "10001:10001"
        _podman(*RUN_OPTIONS, "stop", "--time", str(STOP_TIMEOUT_S), container, timeout=STOP_TIMEOUT_S + 30)
        logs = _podman(*RUN_OPTIONS, "logs", container).stdout + _podman(*RUN_OPTIONS, "logs", container).stderr
        assert '"msg": "stopped"' in logs, logs[-3000:]
    finally:
        _podman(*RUN_OPTIONS, "rm", "--force", container, check=False)
