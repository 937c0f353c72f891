"""Property-based fuzzing of the published OpenAPI document: no input may produce a 5xx."""

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import start_server

FUZZ_SECONDS = 30
MIN_CASES = 500
EXAMPLES_PER_OPERATION = 150


async def test_no_input_produces_a_server_error(dsn, ingest_key, tmp_path: Path):
    server = start_server(dsn, WARROOM_RATE_LIMIT_PER_S=0)
    try:
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "st"),
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--header",
                f"Authorization: Bearer {ingest_key}",
                "--max-examples",
                str(EXAMPLES_PER_OPERATION),
                "--max-time",
                str(FUZZ_SECONDS),
                "--seed",
                "20261111",
                "--generation-allow-x00",
                "true",
                "--workers",
                "2",
                "--no-color",
                "--generation-database",
                "none",
            ],
            capture_output=True,
            text=True,
            timeout=FUZZ_SECONDS * 4,
            cwd=tmp_path,
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated and int(generated.group(1)) >= MIN_CASES, result.stdout[-3000:]
