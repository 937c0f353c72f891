"""JSON nested 1,000 levels deep is a client error (400 naming the nesting), never a 500 that clients retry forever."""

import httpx
import pytest

from app.core import nesting
from tests.conftest import create_key, event

DEEP = 1000


def nested(levels: int, inner: str = "1") -> str:
    return "[" * levels + inner + "]" * levels


DEEP_BODIES = {
    "events-array": '{"events":' + nested(DEEP) + "}",
    "events-nul": '{"events":[{"event_id":"n-1","type":"visit","anonymous_id":"a","props":{"a":"\\u0000","b":'
    + nested(DEEP)
    + "}}]}",
    "single-props": '{"event_id":"d-1","type":"visit","anonymous_id":"a","props":{"x":' + nested(DEEP) + "}}",
    "nul-only-deep": '{"event_id":"d-2","type":"visit","anonymous_id":"a","props":{"x":'
    + nested(DEEP, '"\\u0000"')
    + "}}",
}


def assert_nesting_400(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert "nest" in message, message


@pytest.mark.parametrize("name", sorted(DEEP_BODIES))
async def test_deep_json_to_events_is_400(client, name):
    response = await client.post("/v1/events", content=DEEP_BODIES[name], headers={"Content-Type": "application/json"})
    assert_nesting_400(response)


@pytest.mark.parametrize("keyed", [True, False])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/batch", '{"batch":' + nested(DEEP) + "}"),
        (
            "/v1/batch",
            '{"batch":[{"type":"track","event":"Order Completed","messageId":"m","properties":{"a":'
            + nested(DEEP, '"\\u0000"')
            + "}}]}",
        ),
        ("/v1/track", '{"event":"Order Completed","messageId":"m","properties":{"a":' + nested(DEEP) + "}}"),
    ],
)
async def test_deep_json_to_segment_is_400_with_and_without_key(server, ingest_key, path, body, keyed):
    headers = {"Content-Type": "application/json"}
    if keyed:
        headers["Authorization"] = f"Bearer {ingest_key}"
    else:
        body = body[:-1] + f',"writeKey":"{ingest_key}"}}'
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.post(path, content=body, headers=headers)
    assert_nesting_400(response)


async def test_props_nested_deeper_than_the_limit_is_a_per_event_error(client, db):
    """Deep enough to decode, too deep to keep: the event is rejected naming props; its neighbours are stored."""
    deep_props = {"x": 1}
    for _ in range(nesting.MAX_PROPS_DEPTH):
        deep_props = {"x": deep_props}
    batch = [event("p-1", "visit"), event("p-2", "visit", props=deep_props)]
    response = await client.post("/v1/events", json={"events": batch})
    assert response.status_code == 202
    report = response.json()
    assert report["accepted"] == 1
    assert report["rejected"][0]["index"] == 1
    error = report["rejected"][0]["errors"][0]
    assert error["field"] == "props" and "nest" in error["message"], error


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/silences", '{"matchers":' + nested(DEEP, '"a=b"') + ',"ends_at":"2099-01-01T00:00:00Z","reason":"x"}'),
        ("/v1/alerts/a-1/ack", '{"by":' + nested(DEEP) + "}"),
        ("/v1/campaigns/c-1", '{"id":' + nested(DEEP) + "}"),
    ],
)
async def test_deep_json_to_operator_endpoints_is_400(server, dsn, path, body):
    key = await create_key(dsn, "operator")
    method = "PUT" if path.startswith("/v1/campaigns") else "POST"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.request(
            method, path, content=body, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        )
    assert_nesting_400(response)


def test_depth_skips_brackets_inside_strings():
    assert nesting.depth(b'{"a": "[[[[{{{{", "b": [1, [2]]}') == 3
    assert nesting.depth(b'"\\"[[["') == 0
    assert nesting.depth(nested(DEEP).encode()) == DEEP
    assert nesting.too_deep(b"[[1]]", 2) is None
    assert nesting.too_deep(b"[[[1]]]", 2) == 3
