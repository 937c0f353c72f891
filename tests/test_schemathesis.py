"""Property-based fuzzing of the published OpenAPI document: no input may produce a 5xx, and every answer
matches the schema the document declares for its status.

Two passes, each with the key its endpoints need: ingest endpoints with an ingest key, everything
else (campaigns, alerts, silences, rules) with an operator key.
"""

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI

from app.core.settings import Settings
from app.server import create_app, create_ingest_app
from tests.conftest import create_key, start_server

FUZZ_SECONDS = 40
MIN_CASES = 300
EXAMPLES_PER_OPERATION = 100
INGEST_TAGS = ("ingest", "segment")
CHECKS = "not_a_server_error,response_schema_conformance"
NO_BODY = "204"


def fuzz(url: str, key: str, tags: tuple[str, ...], include: bool, cwd: Path) -> str:
    selection = [arg for tag in tags for arg in (f"--{'include' if include else 'exclude'}-tag", tag)]
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{url}/openapi.json",
            "--checks",
            CHECKS,
            "--header",
            f"Authorization: Bearer {key}",
            *selection,
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--max-time",
            str(FUZZ_SECONDS),
            "--seed",
            "20261111",
            "--generation-allow-x00",
            "true",
            "--workers",
            "1",  # one thread: Python 3.11's ast.parse is not thread-safe ("AST constructor recursion depth
            # mismatch"), and Hypothesis parses the source of lambdas while it describes strategies
            "--no-color",
            "--generation-database",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS * 6,
        cwd=cwd,
    )
    output = result.stdout + result.stderr
    # A crash inside schemathesis itself is reported as a "Runtime Error"; only our server's answers count.
    assert "Server error" not in output and "FAILURES" not in output, output[-6000:]
    generated = re.search(r"(\d+) generated", output)
    assert generated and int(generated.group(1)) >= MIN_CASES, output[-3000:]
    return output


@pytest.mark.parametrize(("scope", "include"), [("ingest", True), ("operator", False)])
async def test_no_input_produces_a_server_error(dsn, tmp_path: Path, scope: str, include: bool):
    key = await create_key(dsn, scope)
    server = start_server(dsn, WARROOM_RATE_LIMIT_PER_S=0)
    try:
        fuzz(server.url, key, INGEST_TAGS, include, tmp_path)
    finally:
        server.stop()


@pytest.mark.parametrize("build", [create_app, create_ingest_app], ids=["server", "ingest"])
def test_every_operation_documents_its_success_body_and_the_error_body(build: Callable[[Settings], FastAPI]):
    """What schemathesis checks answers against: a JSON schema for each operation's success status (none for
    204, which has no body), and the one error body for every other status."""
    spec = build(Settings.from_env({})).openapi()
    operations = [(method, path, op) for path, ops in spec["paths"].items() for method, op in ops.items()]
    assert len(operations) >= (20 if build is create_app else 6)
    for method, path, op in operations:
        answers = op["responses"]
        success = min(status for status in answers if status.startswith("2"))
        if success == NO_BODY:
            assert "content" not in answers[success], (method, path)
        else:
            assert answers[success]["content"]["application/json"]["schema"], (method, path, success)
        assert answers["default"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }, (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"], "FastAPI's 422 shape is never sent"
