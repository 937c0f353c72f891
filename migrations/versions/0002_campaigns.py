"""Campaign definitions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

A campaign is stored whole as validated JSON (the YAML file's content); the
metrics engine and the API read it from here so every process agrees.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE campaigns (
            id          text PRIMARY KEY,
            definition  jsonb NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE campaigns")
