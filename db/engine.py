"""Engine construction and the one way to get a connection: `transaction()`.

Reads are one SQL statement each (docs/decisions/0003), so they autocommit: a request costs
one round trip, not BEGIN, the statement and COMMIT. A write takes several statements (the
feed position, the write, an idempotency key: docs/decisions/0005), so it runs in
`write_transaction()`.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from db import deadline

DEFAULT_DATABASE_URL = "sqlite:///./tasks.db"
# A connection idle longer than this is pinged before use; one in steady use is not.
PING_AFTER_IDLE_SECONDS = 1.0
# How long past `statement_timeout` the service waits for an answer before giving up on its
# own: PostgreSQL's timeout fires first whenever PostgreSQL is actually running the statement.
DEADLINE_MARGIN_SECONDS = 1.0
log = logging.getLogger(__name__)

BEGIN, BEGIN_IMMEDIATE, COMMIT, ROLLBACK = "BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"
TRANSACTION_CONTROL = frozenset({BEGIN, BEGIN_IMMEDIATE, COMMIT, ROLLBACK})

# Errors that mean "the database cannot be reached now", not "this request is wrong":
# the app answers them with 503, and start-up waits them out.
DATABASE_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)

# Set per request by the app, so two apps (SQLite and PostgreSQL) can live in one process.
current_engine: ContextVar[Engine] = ContextVar("current_engine")


def normalize_url(url: str) -> str:
    """Accept the `postgres://` and `postgresql://` forms hosting providers hand out."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 0,
    pool_timeout: float = 5.0,
    connect_timeout: int = 5,
    statement_timeout: float | None = None,
) -> Engine:
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    engine = create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        # An error's text (which may reach a log) never carries the statement's values.
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        connect_args={"connect_timeout": connect_timeout},
    )
    _connect_by_deadline(engine, connect_timeout)
    _ping_when_idle(engine, ping_deadline=connect_timeout)
    if statement_timeout is not None:
        _bound_statements(engine, statement_timeout)
    return engine


def _connect_by_deadline(engine: Engine, seconds: float) -> None:
    """psycopg2's green mode connects asynchronously, where libpq ignores `connect_timeout`:
    the deadline takes its place."""
    deadline.install()

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        with deadline.deadline(seconds):
            return dialect.loaded_dbapi.connect(*cargs, **cparams)


def _ping_when_idle(engine: Engine, ping_deadline: float) -> None:
    """`pool_pre_ping` costs a round trip on every checkout. A connection back in use within
    a second needs none: if the database went away meanwhile, the statement's own error
    invalidates the pool, and the answer is the 503 an outage gets anyway. A connection
    that sat idle is pinged, so a restarted database does not break the next request."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            with deadline.deadline(ping_deadline), dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool discards this connection and checks out (or opens) another.
            raise sa_exc.DisconnectionError() from error


def _bound_statements(engine: Engine, seconds: float) -> None:
    """Bound every statement. `SET LOCAL` travels in the same message as the statement, which
    PostgreSQL runs as one implicit transaction: the bound ends with it, costs no round
    trip, and works through Neon's pooled endpoint (PgBouncer in transaction mode), which
    refuses the `options` startup parameter and would hand a session `SET` to another client."""
    prefix = f"SET LOCAL statement_timeout = {max(1, round(seconds * 1000))}; "
    wait = seconds + DEADLINE_MARGIN_SECONDS

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _bounded(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> tuple[str, Any]:
        deadline.start(wait)
        if statement in TRANSACTION_CONTROL:
            # Outside a transaction block SET LOCAL only warns; inside, the next statement
            # carries its own.
            return statement, parameters
        return prefix + statement, parameters

    @event.listens_for(engine, "after_cursor_execute")
    def _done(*_args: Any) -> None:
        deadline.clear()

    @event.listens_for(engine, "handle_error")
    def _failed(_context: Any) -> None:
        deadline.clear()


def _sqlite_engine(url: str) -> Engine:
    # Writers queue on SQLite's single write lock; wait for it rather than fail at once.
    engine = create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        hide_parameters=True,
        connect_args={"timeout": 30, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


@contextmanager
def transaction() -> Iterator[Connection]:
    """A connection for one unit of work: one statement, which commits on its own."""
    connection = current_engine.get().connect()
    try:
        yield connection
    finally:
        _close(connection)


def _close(connection: Connection) -> None:
    # When the database has gone away, returning the connection fails too. The request's
    # own error (a 503) already says so; a second traceback from cleanup says nothing new.
    try:
        connection.close()
    except sa_exc.DBAPIError as error:
        log.warning("returning a connection failed: %s", type(error.orig).__name__)


@contextmanager
def write_transaction() -> Iterator[Connection]:
    """A connection whose statements commit together, or not at all when the block raises.

    The connection stays in autocommit mode and the transaction is spelt out: `BEGIN` (on
    SQLite `BEGIN IMMEDIATE`, so the write lock is taken up front and two writers never both
    read and then fail to upgrade), the statements, `COMMIT`. Switching the driver out of
    autocommit instead would cost a call per request into psycopg2 that bypasses
    SQLAlchemy's error handling, so an outage there would not be the 503 it is."""
    engine = current_engine.get()
    connection = engine.connect()
    try:
        connection.exec_driver_sql(BEGIN_IMMEDIATE if engine.dialect.name == "sqlite" else BEGIN)
        try:
            yield connection
            connection.exec_driver_sql(COMMIT)
        except BaseException:
            _rollback(connection)
            raise
    finally:
        _close(connection)


def _rollback(connection: Connection) -> None:
    if connection.invalidated:
        # The connection broke mid-transaction: the database has rolled back by itself, and
        # SQLAlchemy only needs its own state cleared.
        connection.rollback()
        return
    try:
        connection.exec_driver_sql(ROLLBACK)
    except sa_exc.DBAPIError as error:
        # The connection is gone; the database rolls the transaction back by itself.
        log.warning("rolling back failed: %s", type(error.orig).__name__)
