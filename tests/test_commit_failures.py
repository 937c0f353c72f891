"""What a failed group commit means: 503 for a database that cannot be used now, 422 only for refused data.

The exceptions are the real ones asyncpg and PostgreSQL raise during an outage (seen in
tests/test_durability.py's outage cycles), among them the driver's state error after a dropped
connection, which used to fall through to per-submission isolation and be answered 422.
"""

import asyncpg
import pytest

from app.core.database import ENCODING_ERROR
from app.ingest.group_commit import commit_failure

STATE_ERROR = asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress")


def _postgres(cls: type[asyncpg.PostgresError], message: str = "x") -> asyncpg.PostgresError:
    return cls(message)


UNAVAILABLE = [
    STATE_ERROR,
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.InterfaceError("connection is closed"),
    FileNotFoundError(2, "No such file or directory"),
    ConnectionRefusedError(111, "Connection refused"),
    TimeoutError(),
    _postgres(asyncpg.CannotConnectNowError, "the database system is shutting down"),
    _postgres(asyncpg.AdminShutdownError, "terminating connection due to administrator command"),
    _postgres(asyncpg.TooManyConnectionsError, "sorry, too many clients already"),
    _postgres(asyncpg.ReadOnlySQLTransactionError, "cannot execute INSERT in a read-only transaction"),
]
REFUSED = [
    _postgres(asyncpg.CharacterNotInRepertoireError, "invalid byte sequence"),
    _postgres(asyncpg.NumericValueOutOfRangeError, "numeric field overflow"),
    ENCODING_ERROR("invalid input for query argument $3"),
    OverflowError("date value out of range"),
]


@pytest.mark.parametrize("exc", UNAVAILABLE, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("submissions", [1, 5])
def test_an_unusable_database_fails_the_whole_group_as_unavailable(exc, submissions):
    assert commit_failure(exc, submissions) == "unavailable"


@pytest.mark.parametrize("exc", REFUSED, ids=lambda e: type(e).__name__)
def test_refused_data_is_isolated_then_refused_on_a_single_submission(exc):
    assert commit_failure(exc, 3) == "isolate"
    assert commit_failure(exc, 1) == "refused"


def test_a_clash_with_another_writer_is_written_again():
    assert commit_failure(_postgres(asyncpg.DeadlockDetectedError), 4) == "clash"
    assert commit_failure(_postgres(asyncpg.SerializationError), 1) == "clash"


def test_an_unexplained_error_on_one_submission_asks_for_a_retry_instead_of_blaming_the_data():
    assert commit_failure(KeyError("bug"), 1) == "internal"
    assert commit_failure(_postgres(asyncpg.UndefinedTableError, 'relation "events" does not exist'), 1) == "internal"
