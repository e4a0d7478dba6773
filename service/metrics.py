"""Prometheus metrics, in prometheus-client's multiprocess mode so that every uvicorn worker
reports into one scrape, served on their own listener (`METRICS_PORT`), never on the API's.

prometheus-client picks where values live (memory or PROMETHEUS_MULTIPROC_DIR) when it is
first imported, so `todo-api serve` sets that directory before anything imports this module:
the command line itself must not import it (a test pins that). Label values are the
contract's operationIds, HTTP methods and statuses: never a path, a user or other input.

To count an event from a feature: `metrics.IDEMPOTENCY_REPLAYS.inc()`."""

import os
import time
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)
from sqlalchemy import Engine, event
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
UNROUTED = "none"  # a request no operation of the contract matched (404, the console)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter(
    "tasks_http_requests",
    "HTTP requests answered, by the contract's operationId, method and status.",
    ["operation", "method", "status"],
)
LATENCY = Histogram(
    "tasks_http_request_duration_seconds",
    "Time from a request's arrival to its last response byte, by operationId.",
    ["operation"],
)
IN_FLIGHT = Gauge(
    "tasks_http_requests_in_flight",
    "Requests being handled now.",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "tasks_db_pool_size",
    "Database connections the pools keep (DB_POOL_SIZE per worker).",
    multiprocess_mode="livesum",
)
POOL_CHECKED_OUT = Gauge(
    "tasks_db_pool_checked_out",
    "Database connections in use by a request now.",
    multiprocess_mode="livesum",
)
POOL_OVERFLOW = Gauge(
    "tasks_db_pool_overflow",
    "Connections open beyond the pool size now (at most DB_MAX_OVERFLOW per worker).",
    multiprocess_mode="livesum",
)
POOL_TIMEOUTS = Counter(
    "tasks_db_pool_timeouts",
    "Requests answered 503 because no connection was free within DB_POOL_TIMEOUT.",
)
DB_DEADLINES = Counter(
    "tasks_db_deadlines_exceeded",
    "Database waits the service abandoned at its own deadline (answered 503).",
)
JWKS_FETCHES = Counter("tasks_jwks_fetches", "Fetches of the auth server's JWKS.")
JWKS_FAILURES = Counter(
    "tasks_jwks_fetch_failures", "JWKS fetches that failed (timeout, error status, bad JSON)."
)
IDEMPOTENCY_REPLAYS = Counter(
    "tasks_idempotency_replays", "Requests answered from a stored Idempotency-Key response."
)
IDEMPOTENCY_CONFLICTS = Counter(
    "tasks_idempotency_conflicts",
    "Idempotency-Key reuses refused (another body, or the first request still running).",
)
CHANGE_FEED_PAGES = Counter("tasks_change_feed_pages", "Pages of the change feed served.")
QUOTA_REFUSALS = Counter("tasks_quota_refusals", "Creates refused because a quota was reached.")


def serve(host: str, port: int) -> None:
    """Serve every worker's metrics on their own listener, from a background thread."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, addr=host, registry=registry)


def process_exited() -> None:
    """Drop this worker's live gauges (in flight, pool) from the totals."""
    if os.environ.get(MULTIPROC_DIR):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def watch_pool(engine: Engine) -> None:
    """Follow the pool's connections through its checkout and checkin events."""
    pool: Any = engine.pool
    size = pool.size() if hasattr(pool, "size") else 0
    POOL_SIZE.set(size)

    def overflow() -> None:
        POOL_OVERFLOW.set(max(0, pool.overflow()) if hasattr(pool, "overflow") else 0)

    @event.listens_for(engine, "checkout")
    def _out(*_args: Any) -> None:
        POOL_CHECKED_OUT.inc()
        overflow()

    @event.listens_for(engine, "checkin")
    def _in(*_args: Any) -> None:
        POOL_CHECKED_OUT.dec()
        overflow()


class RequestMetrics:
    """Count and time every request by the operation the contract routed it to."""

    def __init__(self, app: ASGIApp, operations: dict[str, str]) -> None:
        self.app = app
        self.operations = operations  # the resolved handler's name -> its operationId

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extensions = scope.setdefault("extensions", {})
        started = time.perf_counter()
        status = 500  # what the client gets if nothing is sent at all

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            IN_FLIGHT.dec()
            handler = extensions.get("connexion_routing", {}).get("operation_id")
            operation = self.operations.get(handler, UNROUTED)
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            REQUESTS.labels(operation, method, str(status)).inc()
            LATENCY.labels(operation).observe(time.perf_counter() - started)
