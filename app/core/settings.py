"""Settings read from environment variables, validated once at start.

Every setting has a named default here; the README lists them. A bad value
stops the process with a message naming the variable and the reason.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_PORT = 8000
DEFAULT_DATA_DIR = ".warroom"
DEFAULT_CAMPAIGNS_DIR = "campaigns"
DEFAULT_RULES_DIR = "rules"
DEFAULT_NOTIFY_FILE = "notify.yaml"
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_BATCH_EVENTS = 10_000
DEFAULT_QUEUE_EVENTS = 200_000
DEFAULT_GROUP_EVENTS = 20_000
DEFAULT_WRITERS = 2
DEFAULT_COMMIT_TIMEOUT_S = 10.0
DEFAULT_RATE_LIMIT_PER_S = 10_000.0
DEFAULT_KEY_CACHE_S = 2.0
DEFAULT_SHUTDOWN_GRACE_S = 30.0
DEFAULT_WALL_LANGUAGE: Literal["zh", "en"] = "zh"
DEFAULT_ROLE: Literal["all", "ingest"] = "all"
DEFAULT_INGEST_PROCESSES = 0
DEFAULT_INGEST_PORT = 8001
MAX_INGEST_PROCESSES = 64
DEFAULT_METRICS_HOST = "127.0.0.1"
DEFAULT_SESSION_HOURS = 12.0
MAX_SESSION_HOURS = 30 * 24.0
ORIGIN = re.compile(r"https?://(\[[0-9a-f:.]+\]|[^/\s:,\[\]]+)(:\d{1,5})?")
DEFAULT_MAX_API_BODY_BYTES = 64 * 1024
DEFAULT_MAX_KEYLESS_BODY_BYTES = 512 * 1024
"""Segment's own limit for a batch is 500 KB; only bodies carrying their key inside (``writeKey``) are held to it."""
DEFAULT_BODY_TIMEOUT_S = 30.0
DEFAULT_MAX_BODIES_IN_FLIGHT = 64
DEFAULT_AUTH_FAILURES_PER_S = 10.0
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_KEEP_ALIVE_S = 5.0
DEFAULT_MAX_CONNECTIONS = 4096


class SettingsError(Exception):
    """Raised when an environment variable holds an invalid value."""


class Settings(BaseModel):
    """The service configuration. Field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    database_url: str | None = Field(None, alias="DATABASE_URL")
    data_dir: Path = Field(Path(DEFAULT_DATA_DIR), alias="WARROOM_DATA_DIR")
    campaigns_dir: Path = Field(Path(DEFAULT_CAMPAIGNS_DIR), alias="WARROOM_CAMPAIGNS_DIR")
    rules_dir: Path = Field(Path(DEFAULT_RULES_DIR), alias="WARROOM_RULES_DIR")
    notify_file: Path = Field(Path(DEFAULT_NOTIFY_FILE), alias="WARROOM_NOTIFY_FILE")
    public_url: str | None = Field(None, alias="WARROOM_PUBLIC_URL")
    pgdata: Path | None = Field(None, alias="WARROOM_PGDATA")
    host: str = Field("127.0.0.1", alias="WARROOM_HOST")
    port: int = Field(DEFAULT_PORT, ge=1, le=65535, alias="WARROOM_PORT")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", alias="WARROOM_LOG_LEVEL")
    log_format: Literal["auto", "json", "text"] = Field("auto", alias="WARROOM_LOG_FORMAT")
    """``auto``: text when stderr is a terminal, JSON lines otherwise."""
    access_log: bool = Field(False, alias="WARROOM_ACCESS_LOG")
    """Request logs: uvicorn's access log and the HTTP clients' line per request (the demo's drill makes thousands)."""
    default_campaign: str = Field("default", min_length=1, max_length=64, alias="WARROOM_DEFAULT_CAMPAIGN")
    default_currency: str = Field("CNY", pattern=r"^[A-Z]{3}$", alias="WARROOM_DEFAULT_CURRENCY")
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1024, alias="WARROOM_MAX_BODY_BYTES")
    max_batch_events: int = Field(DEFAULT_MAX_BATCH_EVENTS, ge=1, le=100_000, alias="WARROOM_MAX_BATCH_EVENTS")
    queue_events: int = Field(DEFAULT_QUEUE_EVENTS, ge=1, alias="WARROOM_INGEST_QUEUE_EVENTS")
    group_events: int = Field(DEFAULT_GROUP_EVENTS, ge=1, alias="WARROOM_INGEST_GROUP_EVENTS")
    writers: int = Field(DEFAULT_WRITERS, ge=1, le=32, alias="WARROOM_INGEST_WRITERS")
    commit_timeout_s: float = Field(DEFAULT_COMMIT_TIMEOUT_S, gt=0, alias="WARROOM_COMMIT_TIMEOUT_S")
    rate_limit_per_s: float = Field(DEFAULT_RATE_LIMIT_PER_S, ge=0, alias="WARROOM_RATE_LIMIT_PER_S")
    key_cache_s: float = Field(DEFAULT_KEY_CACHE_S, ge=0, alias="WARROOM_KEY_CACHE_S")
    shutdown_grace_s: float = Field(DEFAULT_SHUTDOWN_GRACE_S, ge=0, alias="WARROOM_SHUTDOWN_GRACE_S")
    wall_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = Field((), alias="WARROOM_WALL_ALLOW")
    wall_language: Literal["zh", "en"] = Field(DEFAULT_WALL_LANGUAGE, alias="WARROOM_WALL_LANGUAGE")
    role: Literal["all", "ingest"] = Field(DEFAULT_ROLE, alias="WARROOM_ROLE")
    """``all``: the whole product; ``ingest``: only the ingest endpoints, no metrics engine or alerts."""
    ingest_processes: int = Field(
        DEFAULT_INGEST_PROCESSES, ge=0, le=MAX_INGEST_PROCESSES, alias="WARROOM_INGEST_PROCESSES"
    )
    """Ingest-role processes the full server starts on ``ingest_port`` (0: none, everything on one process)."""
    ingest_port: int = Field(DEFAULT_INGEST_PORT, ge=1, le=65535, alias="WARROOM_INGEST_PORT")
    metrics_port: int | None = Field(None, ge=1, le=65535, alias="WARROOM_METRICS_PORT")
    """Serve ``/metrics`` on this port (keyless, on ``metrics_host``) and not on the API port."""
    metrics_host: str = Field(DEFAULT_METRICS_HOST, min_length=1, alias="WARROOM_METRICS_HOST")
    session_hours: float = Field(DEFAULT_SESSION_HOURS, gt=0, le=MAX_SESSION_HOURS, alias="WARROOM_SESSION_HOURS")
    """How long a page stays signed in after exchanging a key for a session cookie."""
    metrics_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = Field((), alias="WARROOM_METRICS_ALLOW")
    """Addresses that may scrape ``/metrics`` on the API port without a ``metrics`` key."""
    cors_origins: tuple[str, ...] = Field((), alias="WARROOM_CORS_ORIGINS")
    """Browser origins (``https://shop.example``, or ``*``) allowed to post to the Segment-compatible endpoints."""
    max_api_body_bytes: int = Field(DEFAULT_MAX_API_BODY_BYTES, ge=1024, alias="WARROOM_MAX_API_BODY_BYTES")
    """Body limit of every endpoint but ingest (silences, acknowledgements…) and campaigns (1 MiB)."""
    max_keyless_body_bytes: int = Field(DEFAULT_MAX_KEYLESS_BODY_BYTES, ge=1024, alias="WARROOM_MAX_KEYLESS_BODY_BYTES")
    body_timeout_s: float = Field(DEFAULT_BODY_TIMEOUT_S, gt=0, alias="WARROOM_BODY_TIMEOUT_S")
    max_bodies_in_flight: int = Field(DEFAULT_MAX_BODIES_IN_FLIGHT, ge=1, alias="WARROOM_MAX_BODIES_IN_FLIGHT")
    auth_failures_per_s: float = Field(DEFAULT_AUTH_FAILURES_PER_S, ge=0, alias="WARROOM_AUTH_FAILURES_PER_S")
    """Failed key checks allowed per client address and second (bursts of two seconds' worth); 0: unlimited."""
    header_timeout_s: float = Field(DEFAULT_HEADER_TIMEOUT_S, gt=0, alias="WARROOM_HEADER_TIMEOUT_S")
    keep_alive_s: float = Field(DEFAULT_KEEP_ALIVE_S, gt=0, alias="WARROOM_KEEP_ALIVE_S")
    max_connections: int = Field(DEFAULT_MAX_CONNECTIONS, ge=16, alias="WARROOM_MAX_CONNECTIONS")

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _unset_port(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql:// (e.g. postgresql://user:pass@host:5432/db)")
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                "must start with http:// or https:// (the address people open, e.g. https://warroom.example.com)"
            )
        return value.rstrip("/")

    @property
    def base_url(self) -> str:
        """Where people reach this server; links in chat messages point here."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @field_validator("wall_allow", "metrics_allow", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        """Comma-separated addresses or CIDR blocks, e.g. ``10.0.5.0/24, 192.168.1.20``."""
        if not isinstance(value, str):
            return value
        networks = []
        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address or CIDR block (e.g. 10.0.5.0/24)") from None
        return tuple(networks)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        """Comma-separated origins as a browser sends them (scheme, host, optional port; no path), or ``*``."""
        if not isinstance(value, str):
            return value
        origins = tuple(filter(None, (p.strip().rstrip("/").lower() for p in value.split(","))))
        for origin in origins:
            if origin != "*" and not ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin (e.g. https://shop.example or http://127.0.0.1:3000) nor *"
                )
        return origins

    @model_validator(mode="after")
    def _ingest_port_free(self) -> Settings:
        if self.ingest_processes and self.role == "all" and self.ingest_port == self.port:
            raise ValueError(
                f"WARROOM_INGEST_PORT={self.ingest_port!r}: must differ from WARROOM_PORT"
                " when WARROOM_INGEST_PROCESSES is set"
            )
        return self

    @model_validator(mode="after")
    def _metrics_port_free(self) -> Settings:
        if self.metrics_port is not None and self.metrics_port in (self.port, self.ingest_port):
            raise ValueError(
                f"WARROOM_METRICS_PORT={self.metrics_port!r}: must differ from WARROOM_PORT and WARROOM_INGEST_PORT"
            )
        return self

    @property
    def pgdata_dir(self) -> Path:
        """Where the embedded PostgreSQL keeps its data when DATABASE_URL is unset."""
        return (self.pgdata or self.data_dir / "pgdata").resolve()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment, raising SettingsError with one line per bad variable."""
        env = dict(os.environ if environ is None else environ)
        try:
            return cls.model_validate(env)
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                if not err["loc"]:  # a check across settings names its variables itself
                    lines.append(err["msg"].removeprefix("Value error, "))
                    continue
                name = str(err["loc"][0])
                lines.append(f"{name}={env.get(name, '')!r}: {err['msg']}")
            raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None
