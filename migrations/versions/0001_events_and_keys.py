"""The durable event log and the API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Events are kept in one table ordered by ``seq`` (a bigint identity, so ingest
order and time order coincide and the metrics engine tails it by range scan).
``event_id`` carries a global unique index: it is the idempotency key, and a
global uniqueness guarantee is why the table is not partitioned (PostgreSQL
requires the partition key in every unique index). Retention deletes ranges
of ``seq`` located through the BRIN index on ``received_at``.
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE events (
            seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id     text NOT NULL,
            type         text NOT NULL,
            occurred_at  timestamptz NOT NULL,
            received_at  timestamptz NOT NULL DEFAULT now(),
            campaign     text NOT NULL,
            channel      text,
            user_id      text,
            anonymous_id text,
            session_id   text,
            order_id     text,
            sku          text,
            quantity     bigint,
            amount       numeric,
            currency     text,
            warehouse    text,
            metric       text,
            value        double precision,
            labels       jsonb,
            props        jsonb,
            CONSTRAINT events_event_id_key UNIQUE (event_id)
        )
        """
    )
    op.execute("CREATE INDEX events_received_at_brin ON events USING brin (received_at)")
    op.execute(
        """
        CREATE TABLE api_keys (
            key_id           text PRIMARY KEY,
            name             text NOT NULL,
            scope            text NOT NULL CHECK (scope IN ('ingest', 'operator', 'screen')),
            secret_sha256    bytea NOT NULL,
            rate_limit_per_s double precision CHECK (rate_limit_per_s >= 0),
            created_at       timestamptz NOT NULL DEFAULT now(),
            revoked_at       timestamptz
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL")


def downgrade() -> None:
    op.execute("DROP TABLE api_keys")
    op.execute("DROP TABLE events")
