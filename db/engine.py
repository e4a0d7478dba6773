"""Engine construction and the one way to get a session: `transaction()`."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlmodel import Session

DEFAULT_DATABASE_URL = "sqlite:///./tasks.db"
log = logging.getLogger(__name__)

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
    pool_size: int = 5,
    max_overflow: int = 5,
    pool_timeout: float = 5.0,
    connect_timeout: int = 5,
    statement_timeout: float | None = None,
) -> Engine:
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        connect_args={"connect_timeout": connect_timeout},
    )
    if statement_timeout is not None:
        _bound_statements(engine, statement_timeout)
    return engine


def _bound_statements(engine: Engine, seconds: float) -> None:
    """Bound every statement of every transaction. Transaction-local, because Neon's
    pooled endpoint (PgBouncer in transaction mode) refuses the `options` startup
    parameter and would hand a session-level SET to another client."""
    milliseconds = str(max(1, round(seconds * 1000)))

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.execute(
            text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": milliseconds}
        )


def _sqlite_engine(url: str) -> Engine:
    # Writers queue on SQLite's single write lock; wait for it rather than fail at once.
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


@contextmanager
def transaction() -> Iterator[Session]:
    """A session for one unit of work: commits on success, rolls back on error, always closes."""
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
