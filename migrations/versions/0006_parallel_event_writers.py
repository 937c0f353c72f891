"""Event writers commit in parallel; the metrics tail reads only below the oldest write in flight.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

Until now every writer held one advisory lock from allocating ``seq`` to
COMMIT, so rows became visible in ``seq`` order and a tail reading
``seq > last`` never skipped a late commit, at the price of writing one group
at a time. Now each writer, before its first row, takes a *shared* advisory
lock whose key encodes a lower bound of the ``seq`` values it will use (the
sequence's last value + 1, read before any of its rows draw one), held to
COMMIT. ``events_tail_horizon()`` reads the sequence's last value and then
those marks: every ``seq`` up to the smaller of the last value and the lowest
mark minus one is committed (or rolled back) for good, so the tail reads up
to there and nothing that commits late can fall behind it. This relies on the
identity sequence's default ``CACHE 1`` (its last value is the last one drawn
by anyone); do not raise its cache.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

MARK_BASE = 1 << 62
"""Added to a seq bound to make the advisory key: high bits no other lock of this application uses."""


def upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION events_write_begin() RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock_shared({MARK_BASE} + (SELECT last_value FROM events_seq_seq) + 1);
        END $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION events_tail_horizon() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            last_drawn bigint;
            oldest_mark bigint;
        BEGIN
            -- The sequence first, then the marks: a writer marks before it draws, so either its mark is
            -- seen or its seq values lie above last_drawn.
            SELECT last_value INTO last_drawn FROM events_seq_seq;
            SELECT min(((l.classid::bigint << 32) | l.objid::bigint) - {MARK_BASE}) INTO oldest_mark
              FROM pg_locks l
             WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.classid::bigint >= {MARK_BASE >> 32}
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database());
            RETURN least(last_drawn, oldest_mark - 1);
        END $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION events_tail_horizon()")
    op.execute("DROP FUNCTION events_write_begin()")
