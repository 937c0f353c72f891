"""``/metrics`` is not public: a ``metrics`` key, an allow-listed address, or a separate port."""

from __future__ import annotations

import resource

import httpx
import pytest

from app.api.connections import DESCRIPTOR_RESERVE, METRICS_MAX_CONNECTIONS, server_config
from app.core.settings import Settings, SettingsError
from tests.conftest import create_key, free_port, start_server

EXPOSITION = "warroom_ingest_queue_events"
ENGINE_EXPOSITION = 'warroom_undefined_campaign_events_total{campaign="(other)"}'


async def test_the_api_port_wants_a_metrics_key_by_default(dsn, server):
    metrics_key, ingest_key = await create_key(dsn, "metrics"), await create_key(dsn, "ingest")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        anonymous = await http.get("/metrics")
        assert anonymous.status_code == 401 and EXPOSITION not in anonymous.text
        assert (await http.get("/metrics", headers={"Authorization": f"Bearer {ingest_key}"})).status_code == 403
        scraped = await http.get("/metrics", headers={"Authorization": f"Bearer {metrics_key}"})
        assert scraped.status_code == 200 and EXPOSITION in scraped.text
        assert (await http.get("/v1/alerts", headers={"Authorization": f"Bearer {metrics_key}"})).status_code == 403


@pytest.mark.parametrize(("allow", "status"), [("127.0.0.0/8, ::1", 200), ("10.0.0.0/8", 401)])
async def test_an_allow_listed_address_scrapes_without_a_key(dsn, allow, status):
    server = start_server(dsn, WARROOM_METRICS_ALLOW=allow)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            assert (await http.get("/metrics")).status_code == status
    finally:
        server.stop()


async def test_a_metrics_port_serves_them_there_and_not_on_the_api_port(dsn):
    metrics_port = free_port()
    server = start_server(dsn, WARROOM_METRICS_PORT=metrics_port)
    metrics_key = await create_key(dsn, "metrics")
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            hidden = await http.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {metrics_key}"})
            assert hidden.status_code == 404 and "WARROOM_METRICS_PORT" in hidden.text
            scraped = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert scraped.status_code == 200 and EXPOSITION in scraped.text
            assert ENGINE_EXPOSITION in scraped.text, "the engine's series too, read from the same services"
            assert (await http.get(f"http://127.0.0.1:{metrics_port}/v1/alerts")).status_code == 404
    finally:
        server.stop()
    async with httpx.AsyncClient(timeout=30) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{metrics_port}/metrics")


def test_settings_name_the_bad_metrics_variable():
    with pytest.raises(SettingsError, match="WARROOM_METRICS_PORT"):
        Settings.from_env({"WARROOM_METRICS_PORT": "8000"})
    with pytest.raises(SettingsError, match="WARROOM_METRICS_ALLOW"):
        Settings.from_env({"WARROOM_METRICS_ALLOW": "not-a-network"})


DESCRIPTOR_LIMIT = 1024


def test_the_metrics_port_holds_a_small_share_of_the_same_descriptor_limit(monkeypatch):
    """Each listener once got ``WARROOM_MAX_CONNECTIONS`` and its own reserve: together over the limit."""
    monkeypatch.setattr(resource, "getrlimit", lambda _: (DESCRIPTOR_LIMIT, DESCRIPTOR_LIMIT))
    monkeypatch.setattr(resource, "setrlimit", lambda *_: pytest.fail("the descriptor limit is at its hard maximum"))
    settings = Settings.from_env({"WARROOM_METRICS_PORT": "9109", "WARROOM_MAX_CONNECTIONS": "5000"})

    def budget(**options) -> int:
        return server_config(None, settings, "127.0.0.1", 1, **options).http.limits.max_connections

    api, metrics = budget(), budget(metrics_listener=True)
    assert metrics == METRICS_MAX_CONNECTIONS
    assert api + metrics + DESCRIPTOR_RESERVE == DESCRIPTOR_LIMIT
    without_metrics_port = Settings.from_env({"WARROOM_MAX_CONNECTIONS": "5000"})
    alone = server_config(None, without_metrics_port, "127.0.0.1", 1).http.limits.max_connections
    assert alone == DESCRIPTOR_LIMIT - DESCRIPTOR_RESERVE, "no metrics port: the API port has the whole budget"
