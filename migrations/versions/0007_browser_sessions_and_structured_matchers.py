"""Silence matchers stored structured; on-call sessions; a ``metrics`` key scope.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Silences kept their matchers as text (``sku=~.*``) and parsed them on every
read, so an equality on a value starting with ``~`` came back as a regex. They
are now JSON objects ``{"name", "op", "value"}``; the text of existing rows is
parsed here, once, as it was enforced until now.

``sessions`` holds the hash of each browser session token (the on-call page
exchanges a key for an HttpOnly cookie), tied to the key it was made from: a
revoked key's sessions are refused, and deleting a key deletes them.

The ``metrics`` scope is for Prometheus scraping ``/metrics``: it reads service
metrics and nothing else.
"""

import json
import re

from alembic import op
from sqlalchemy import text

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TEXT_MATCHER = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>.*?)\s*$")
"""The text form as revision 0004's readers parsed it (quotes around a value were dropped)."""


def _structured(matcher: str) -> dict[str, str]:
    match = TEXT_MATCHER.match(matcher)
    if match is None:
        raise ValueError(f"silence matcher {matcher!r} is not name=value, name!=value, name=~regex or name!~regex")
    value = match["value"]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return {"name": match["name"], "op": match["op"], "value": value}


def _text(matcher: dict[str, str]) -> str:
    value = matcher["value"]
    if matcher["op"] == "=" and value.startswith("~"):
        value = f'"{value}"'
    return f"{matcher['name']}{matcher['op']}{value}"


def _convert(convert) -> None:  # type: ignore[no-untyped-def]
    bind = op.get_bind()
    for silence_id, matchers in bind.execute(text("SELECT id, matchers::text FROM silences")).all():
        converted = [convert(m) for m in json.loads(matchers)]
        bind.execute(
            text("UPDATE silences SET matchers = CAST(:matchers AS jsonb) WHERE id = :id"),
            {"id": silence_id, "matchers": json.dumps(converted, ensure_ascii=False)},
        )


def upgrade() -> None:
    _convert(_structured)
    op.execute(
        "ALTER TABLE silences ADD CONSTRAINT silences_matchers_structured CHECK"
        " (jsonb_typeof(matchers) = 'array' AND NOT jsonb_path_exists(matchers, '$[*] ? (@.type() != \"object\")'))"
    )
    op.execute("ALTER TABLE api_keys DROP CONSTRAINT api_keys_scope_check")
    op.execute(
        "ALTER TABLE api_keys ADD CONSTRAINT api_keys_scope_check"
        " CHECK (scope IN ('ingest', 'operator', 'screen', 'metrics'))"
    )
    op.execute(
        """
        CREATE TABLE sessions (
            token_sha256 bytea PRIMARY KEY,
            key_id       text NOT NULL REFERENCES api_keys (key_id) ON DELETE CASCADE,
            created_at   timestamptz NOT NULL DEFAULT now(),
            expires_at   timestamptz NOT NULL,
            CHECK (expires_at > created_at)
        )
        """
    )
    op.execute("CREATE INDEX sessions_key ON sessions (key_id)")
    op.execute("CREATE INDEX sessions_expires ON sessions (expires_at)")


def downgrade() -> None:
    op.execute("DROP TABLE sessions")
    op.execute("DELETE FROM api_keys WHERE scope = 'metrics'")
    op.execute("ALTER TABLE api_keys DROP CONSTRAINT api_keys_scope_check")
    op.execute(
        "ALTER TABLE api_keys ADD CONSTRAINT api_keys_scope_check CHECK (scope IN ('ingest', 'operator', 'screen'))"
    )
    op.execute("ALTER TABLE silences DROP CONSTRAINT silences_matchers_structured")
    _convert(_text)
