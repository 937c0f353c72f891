"""Notification log, outbox and delivery attempts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

``notification_log`` is what each receiver was last told about each alert
group (Alertmanager's nflog). A flush updates it and inserts the outgoing
messages into ``notifications`` in one transaction, so a restart neither
forgets a decided message nor decides it twice. Each message is sent to one
Apprise URL of one contact point; ``dedup_key`` (group, flush number, URL)
makes the insert idempotent. Every delivery attempt is kept.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE notification_log (
            lane       text NOT NULL,
            receiver   text NOT NULL,
            group_key  text NOT NULL,
            told       jsonb NOT NULL,
            sent_at    timestamptz NOT NULL,
            flushes    integer NOT NULL,
            PRIMARY KEY (lane, receiver, group_key)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE notifications (
            id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            dedup_key        text NOT NULL UNIQUE,
            contact_point    text NOT NULL,
            url_id           text NOT NULL,
            lane             text NOT NULL,
            group_key        text NOT NULL,
            kind             text NOT NULL CHECK (kind IN ('firing', 'resolved', 'repeat', 'escalation')),
            severity         text NOT NULL,
            alert_ids        text[] NOT NULL,
            title            text NOT NULL,
            body             text NOT NULL,
            notify_type      text NOT NULL,
            status           text NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
            attempts         integer NOT NULL DEFAULT 0,
            next_attempt_at  timestamptz NOT NULL DEFAULT now(),
            last_error       text,
            created_at       timestamptz NOT NULL DEFAULT now(),
            delivered_at     timestamptz
        )
        """
    )
    op.execute(
        "CREATE INDEX notifications_due ON notifications (contact_point, url_id, next_attempt_at)"
        " WHERE status = 'pending'"
    )
    op.execute("CREATE INDEX notifications_created ON notifications (created_at DESC)")
    op.execute(
        """
        CREATE TABLE notification_attempts (
            notification_id  bigint NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
            attempt          integer NOT NULL,
            at               timestamptz NOT NULL DEFAULT now(),
            ok               boolean NOT NULL,
            duration_ms      double precision NOT NULL,
            error            text,
            PRIMARY KEY (notification_id, attempt)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE notification_attempts")
    op.execute("DROP TABLE notifications")
    op.execute("DROP TABLE notification_log")
