"""Probes for the platform: liveness never touches the database, readiness does."""

from typing import Any

from sqlalchemy import text

from db.engine import transaction
from service.draining import DRAINING
from service.problems import ServiceUnavailable
from service.responses import json_body

OK = {"status": "ok"}


def health() -> tuple[Any, int, dict[str, str]]:
    """The process serves requests."""
    return json_body(OK)


def ready() -> tuple[Any, int, dict[str, str]]:
    """The database answers and the process is not shutting down; a database error becomes
    503 in the app's error handler."""
    if DRAINING.is_set():
        raise ServiceUnavailable("The instance is shutting down.")
    with transaction() as connection:
        connection.execute(text("SELECT 1"))
    return json_body(OK)
