"""Dash's own routes under ``/wall`` answer a client's mistakes with 4xx and a JSON error, never 500."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RunningServer, start_server

CALLBACK_PATH = "/wall/_dash-update-component"
REQUEST_TIMEOUT_S = 10


@pytest.fixture
def wall_server(dsn: str) -> Iterator[RunningServer]:
    """A server whose wall admits this machine, so requests reach Dash's routes."""
    running = start_server(dsn, WARROOM_WALL_ALLOW="127.0.0.0/8")
    yield running
    running.stop()


def test_unregistered_component_suite_files_answer_404(wall_server):
    with httpx.Client(base_url=wall_server.url, timeout=REQUEST_TIMEOUT_S) as http:
        page = http.get("/wall/")
        scripts = [part.split('"')[0] for part in page.text.split('src="')[1:] if "_dash-component-suites" in part]
        known = http.get(scripts[0])
        missing = [
            http.get(path)
            for path in (
                "/wall/_dash-component-suites/dash/nope.js",
                "/wall/_dash-component-suites/not_a_package/x.js",
                "/wall/_dash-component-suites/dash/dcc/nope.v4_4_1m1.js",
                "/wall/_dash-component-suites/os/__init__.py",
            )
        ]
    assert page.status_code == 200 and known.status_code == 200
    for response in missing:
        assert response.status_code == 404, (response.request.url, response.text[:200])
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (b"{", "application/json", None),
        (b"", "application/json", None),
        (b"[]", "application/json", None),
        (b"{}", "application/json", "output"),
        (b'{"output": 3}', "application/json", "output"),
        (b'{"output": "no-such-callback", "inputs": []}', "application/json", "output"),
        (b'{"output": "x", "inputs": "x"}', "application/json", "inputs"),
    ],
)
def test_malformed_callback_requests_answer_400(wall_server, body, content_type, field):
    with httpx.Client(base_url=wall_server.url, timeout=REQUEST_TIMEOUT_S) as http:
        response = http.post(CALLBACK_PATH, content=body, headers={"content-type": content_type})
    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == "bad_request" and error["message"]
    assert error["field"] == field


def test_a_callback_request_that_is_not_json_answers_415(wall_server):
    with httpx.Client(base_url=wall_server.url, timeout=REQUEST_TIMEOUT_S) as http:
        response = http.post(CALLBACK_PATH, content=b"not json", headers={"content-type": "text/plain"})
    assert response.status_code == 415 and response.json()["error"]["field"] == "Content-Type"


def test_the_websocket_push_callback_is_not_run_over_http(wall_server):
    """The wall's only callback streams forever over the websocket: over HTTP it would hold the request open."""
    with httpx.Client(base_url=wall_server.url, timeout=REQUEST_TIMEOUT_S) as http:
        callback = http.get("/wall/_dash-dependencies").json()[0]
        state = [
            {"id": "url", "property": "pathname", "value": "/wall/"},
            {"id": "url", "property": "search", "value": ""},
        ]
        response = http.post(
            CALLBACK_PATH,
            json={"output": callback["output"], "outputs": [], "inputs": [], "state": state, "changedPropIds": []},
        )
    assert response.status_code == 400
    assert "_dash-ws-callback" in response.json()["error"]["message"]
