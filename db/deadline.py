"""Every wait for PostgreSQL ends by a deadline the service keeps itself.

`statement_timeout` bounds a statement once PostgreSQL runs it, and `connect_timeout` a
connection attempt, but neither bounds a statement a pooler holds back: PgBouncer (and so
Neon's pooled endpoint) queues it while no server connection is free or the server is down,
for `query_wait_timeout` (120 s by default), a setting that is not ours on Neon. So psycopg2
runs in its "green" mode (a wait callback polls the socket) and the wait gives up at the
deadline of the statement or connection in progress: the connection is then closed, the
pool discards it, and the request gets its 503 (docs/decisions/0004)."""

import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
from psycopg2 import extensions

_local = threading.local()


class DeadlineExceeded(psycopg2.OperationalError):
    """The database did not answer within the service's own bound."""


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Bound every wait for the database in this thread, within the block, to `seconds`."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = None if seconds is None else time.monotonic() + seconds
    try:
        yield
    finally:
        _local.deadline = previous


def start(seconds: float) -> None:
    """Open a deadline that `clear()` ends: for SQLAlchemy's before/after event pairs."""
    _local.deadline = time.monotonic() + seconds


def clear() -> None:
    _local.deadline = None


def install() -> None:
    """Route psycopg2's waits through `wait` (process-wide, as psycopg2 allows only one)."""
    if extensions.get_wait_callback() is not wait:
        extensions.set_wait_callback(wait)


def wait(connection: Any) -> None:
    """psycopg2's wait callback: poll until the operation completes or the deadline passes.
    Raising here makes psycopg2 close the connection, which is what an abandoned wait needs:
    the statement it carried may still be queued in the pooler."""
    until: float | None = getattr(_local, "deadline", None)
    while True:
        state = connection.poll()
        if state == extensions.POLL_OK:
            return
        if state not in (extensions.POLL_READ, extensions.POLL_WRITE):
            raise psycopg2.OperationalError(f"unexpected poll state {state}")
        # A fresh poller each time: while connecting, libpq may switch sockets.
        poller = select.poll()
        poller.register(
            connection.fileno(), select.POLLIN if state == extensions.POLL_READ else select.POLLOUT
        )
        if until is None:
            poller.poll()
            continue
        remaining = until - time.monotonic()
        timed_out = remaining <= 0 or not poller.poll(max(1, round(remaining * 1000)))
        if timed_out and time.monotonic() >= until:
            raise DeadlineExceeded("the database did not answer in time")
