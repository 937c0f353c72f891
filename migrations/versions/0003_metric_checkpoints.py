"""Checkpoints of the metrics engine's aggregated state.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

The engine's state is bounded by keys, not events, so it is saved whole
(compressed) with the last ``seq`` it includes; after a restart the engine
loads it and replays only the events stored after that ``seq``.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE metric_checkpoints (
            name      text PRIMARY KEY,
            last_seq  bigint NOT NULL,
            state     bytea NOT NULL,
            saved_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE metric_checkpoints")
