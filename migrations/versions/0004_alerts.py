"""Alerts, their transitions, and silences.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

One row per alert occurrence; a partial unique index allows only one firing
occurrence per fingerprint, so neither a restart nor a second engine can
duplicate a firing alert. Every transition is kept with its values; its
``seq`` orders the alert stream that clients resume from.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE alerts (
            id            text PRIMARY KEY,
            fingerprint   text NOT NULL,
            rule          text NOT NULL,
            campaign      text,
            labels        jsonb NOT NULL,
            status        text NOT NULL CHECK (status IN ('firing', 'resolved')),
            severity      text NOT NULL CHECK (severity IN ('reminder', 'warning', 'emergency')),
            active_tiers  text[] NOT NULL,
            pending_since timestamptz NOT NULL,
            fired_at      timestamptz NOT NULL,
            resolved_at   timestamptz,
            flapping      boolean NOT NULL DEFAULT false,
            flips         double precision[] NOT NULL DEFAULT '{}',
            values        jsonb NOT NULL,
            summary_en    text NOT NULL,
            summary_zh    text NOT NULL,
            runbook_en    text NOT NULL,
            runbook_zh    text NOT NULL,
            link          text NOT NULL,
            ack_by        text,
            ack_at        timestamptz,
            ack_comment   text,
            updated_at    timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX alerts_one_firing_per_fingerprint ON alerts (fingerprint) WHERE status = 'firing'")
    op.execute("CREATE INDEX alerts_fired_at ON alerts (fired_at DESC)")
    op.execute(
        """
        CREATE TABLE alert_transitions (
            seq               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            alert_id          text NOT NULL REFERENCES alerts (id),
            at                timestamptz NOT NULL,
            kind              text NOT NULL,
            severity          text NOT NULL,
            previous_severity text,
            flapping          boolean NOT NULL,
            values            jsonb NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX alert_transitions_alert ON alert_transitions (alert_id, seq)")
    op.execute(
        """
        CREATE TABLE silences (
            id          text PRIMARY KEY,
            matchers    jsonb NOT NULL,
            starts_at   timestamptz NOT NULL,
            ends_at     timestamptz NOT NULL,
            reason      text NOT NULL,
            created_by  text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            CHECK (ends_at > starts_at)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE silences")
    op.execute("DROP TABLE alert_transitions")
    op.execute("DROP TABLE alerts")
