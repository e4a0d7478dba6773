"""Engine construction and the one way to get a session: `transaction()`.

Every unit of work is one SQL statement (docs/decisions/0003), so statements autocommit:
a request costs one round trip, not BEGIN, the statement and COMMIT.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlmodel import Session

DEFAULT_DATABASE_URL = "sqlite:///./tasks.db"
# A connection idle longer than this is pinged before use; one in steady use is not.
PING_AFTER_IDLE_SECONDS = 1.0
log = logging.getLogger(__name__)

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
    _ping_when_idle(engine)
    if statement_timeout is not None:
        _bound_statements(engine, statement_timeout)
    return engine


def _ping_when_idle(engine: Engine) -> None:
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
            with dbapi_connection.cursor() as cursor:
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

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _bounded(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> tuple[str, Any]:
        return prefix + statement, parameters


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
def transaction() -> Iterator[Session]:
    """A session for one unit of work (one statement, which commits on its own), always closed."""
    session = Session(current_engine.get(), expire_on_commit=False)
    try:
        with session.begin():
            yield session
    finally:
        _close(session)


def _close(session: Session) -> None:
    # When the database has gone away, returning the connection fails too. The request's
    # own error (a 503) already says so; a second traceback from cleanup says nothing new.
    try:
        session.close()
    except sa_exc.DBAPIError as error:
        log.warning("closing a session failed: %s", type(error.orig).__name__)
