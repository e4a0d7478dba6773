"""Before serving: wait for the database, then apply or check the migrations."""

import logging

from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import make_url
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_before_delay,
    wait_exponential,
)

from db.engine import DATABASE_UNAVAILABLE, make_engine
from db.migrate import pending, upgrade
from service.settings import Settings

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The service cannot start; the message says why and what to do."""


def prepare_database(settings: Settings) -> None:
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    try:
        _wait_for_database(settings)
    except DATABASE_UNAVAILABLE as error:
        raise StartupError(
            f"The database at {where} did not answer within {settings.db_startup_wait:g} s "
            f"(DB_STARTUP_WAIT): {_first_line(error)}"
        ) from None
    try:
        _migrations(settings, where)
    except sa_exc.SQLAlchemyError as error:
        detail = _first_line(error)
        raise StartupError(f"Migrating the database at {where} failed: {detail}") from None


def _wait_for_database(settings: Settings) -> None:
    @retry(
        retry=retry_if_exception_type(DATABASE_UNAVAILABLE),
        stop=stop_before_delay(settings.db_startup_wait),
        wait=wait_exponential(multiplier=0.5, max=5),
        before_sleep=_say_retrying,
        reraise=True,
    )
    def attempt() -> None:
        engine = make_engine(settings.database_url, connect_timeout=settings.db_connect_timeout)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        finally:
            engine.dispose()

    attempt()


def _say_retrying(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    delay = state.next_action.sleep if state.next_action else 0
    log.warning(
        "database not reachable yet (attempt %d: %s); retrying in %.1f s",
        state.attempt_number,
        _first_line(error),
        delay,
    )


def _migrations(settings: Settings, where: str) -> None:
    if settings.db_migrations == "upgrade":
        upgrade(settings.database_url)
        log.info("database migrations applied")
    elif settings.db_migrations == "check":
        current, head = pending(settings.database_url)
        if current != head:
            raise StartupError(
                f"The database at {where} is at migration {current or 'none'}, the code "
                f"needs {head}: run `todo-api migrate`, or set DB_MIGRATIONS=upgrade."
            )
        log.info("database migrations are up to date (%s)", head)


def _first_line(error: BaseException | None) -> str:
    # The driver's message, without SQLAlchemy's appended SQL and documentation link.
    orig = getattr(error, "orig", None) or error
    return str(orig).strip().splitlines()[0] if orig else "unknown error"
