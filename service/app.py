"""The composition root: `create_app()` builds the engine, loads the contract and
wires errors and middleware. Nothing connects to anything at import time."""

import functools
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from typing import Any

import anyio.to_thread
from connexion import AsyncApp
from connexion.exceptions import Unauthorized
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from connexion.problem import problem
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from starlette.types import ASGIApp, Receive, Scope, Send

from db.deadline import DeadlineExceeded
from db.engine import DATABASE_UNAVAILABLE, current_engine, make_engine
from db.tasks import TaskQuotaExceededError, max_tasks_per_user
from service import draining, metrics
from service.contract import load_contract, with_schema_names
from service.dispatch import ContractApp
from service.limits import BodySizeLimit, HeadSizeLimit
from service.logs import REQUEST_ID_HEADER, RequestLog
from service.patches import use_corrected_middleware
from service.patches.content import DefaultContentType, ServeContract
from service.patches.cors import AllowedOriginsOnlyCors
from service.patches.query import ExplodedFormArrays
from service.patches.signatures import BearerHandler, SnakeCaseResolver, handler_name
from service.patches.validation import VALIDATOR_MAP, inline_path_parameters
from service.patches.violations import RaiseParameterViolations
from service.problems import QuotaExceeded, ServiceUnavailable
from service.responses import CompactJsonifier, SecurityHeaders
from service.settings import Settings, current_settings
from service.tokens import current_verifier, verifier_from

log = logging.getLogger(__name__)
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

# What a browser frontend on another origin may send and read: the one list of each.
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    REQUEST_ID_HEADER,
]
CORS_EXPOSED_HEADERS = [
    "ETag",
    "Location",
    "X-Total-Count",
    "Retry-After",
    "Idempotent-Replayed",
    REQUEST_ID_HEADER,
]


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> AsyncApp:
    settings = settings or Settings()
    verifier = verifier_from(settings)
    engine = engine or make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        connect_timeout=settings.db_connect_timeout,
        statement_timeout=settings.db_statement_timeout,
    )

    contract, text = load_contract()
    app = ContractApp(
        __name__,
        validator_map=VALIDATOR_MAP,
        uri_parser_class=ExplodedFormArrays,
        security_map={"bearer": BearerHandler},
        jsonifier=CompactJsonifier(),
        lifespan=_lifespan(engine, settings, measured=settings.metrics_port is not None),
    )
    app.add_api(
        inline_path_parameters(with_schema_names(contract)),
        resolver=SnakeCaseResolver(),
        validate_responses=settings.validate_responses,
        # An unknown query parameter is a 422 like any other value the contract refuses,
        # rather than silently ignored (a misspelt `?stauts=` would list everything).
        strict_validation=True,
        swagger_ui_options=SwaggerUIOptions(
            swagger_ui=settings.swagger_ui,
            swagger_ui_path="/api/ui",
            spec_path="/api/openapi.json",
        ),
    )
    app.add_middleware(
        ServeContract, position=MiddlewarePosition.BEFORE_SWAGGER, contract=contract, text=text
    )
    app.add_middleware(
        BindContext,
        position=MiddlewarePosition.BEFORE_SECURITY,
        bindings={
            current_engine: engine,
            current_verifier: verifier,
            current_settings: settings,
            max_tasks_per_user: settings.max_tasks_per_user,
        },
    )
    # First at this position, so that nothing after validation runs before it.
    app.add_middleware(RaiseParameterViolations, position=MiddlewarePosition.BEFORE_CONTEXT)
    app.add_middleware(
        BodySizeLimit,
        position=MiddlewarePosition.BEFORE_VALIDATION,
        timeout_seconds=settings.request_body_timeout,
    )
    _add_operations_middleware(app, settings, _operation_paths(contract))
    if settings.metrics_port is not None:
        app.add_middleware(
            metrics.RequestMetrics,
            position=MiddlewarePosition.BEFORE_EXCEPTION,
            operations=_operation_ids(contract),
        )
        metrics.watch_pool(engine)
    app.add_error_handler(Unauthorized, _unauthorized)
    app.add_error_handler(TaskQuotaExceededError, _quota_exceeded)
    for error in DATABASE_UNAVAILABLE:
        app.add_error_handler(error, _database_unavailable)
    use_corrected_middleware(app.middleware.middlewares)
    return app


def _add_operations_middleware(
    app: AsyncApp, settings: Settings, operations: dict[str, tuple[str, str]]
) -> None:
    """Request logs, CORS, head limits and the JSON default for an untyped body."""
    # Each insertion goes just outside the exception middleware, so the first added is
    # outermost: the request log sees every answer, a CORS preflight's included.
    app.add_middleware(
        RequestLog,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        routes={name: path for name, (path, _) in operations.items()},
    )
    app.add_middleware(SecurityHeaders, position=MiddlewarePosition.BEFORE_EXCEPTION)
    if settings.allowed_origins:
        _allow_cross_origin(app, settings, operations)
    app.add_middleware(HeadSizeLimit, position=MiddlewarePosition.BEFORE_SWAGGER)
    app.add_middleware(DefaultContentType, position=MiddlewarePosition.BEFORE_VALIDATION)


def _lifespan(
    engine: Engine, settings: Settings, *, measured: bool
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    threads = settings.threads

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        # Connexion runs sync handlers on anyio's default thread limiter (40 threads);
        # size it to the connection pool so waiting happens here, not in the pool.
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        draining.install(settings.drain_seconds)
        settle_heap()
        log.info("serving with %d worker threads", threads)
        try:
            yield
        finally:
            engine.dispose()
            log.info("database connections closed")
            if measured:
                metrics.process_exited()

    return lifespan


# Young objects are collected after this many allocations (CPython's default is 700): a
# request allocates thousands, nearly all freed by reference counting anyway.
GC_THRESHOLDS = (50_000, 20, 20)


@functools.cache  # once per process: a worker serves one app
def settle_heap() -> None:
    """Take what start-up built (the contract, Connexion's routes and validators,
    SQLAlchemy's tables and statements) out of the cyclic collector's reach, and collect
    young objects less often. Every full collection walked all of it: the slowest 1 % of
    requests waited for one, and collections cost about 15 % of a request's CPU
    (docs/performance.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _operation_paths(contract: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """handler name -> (path template, HTTP method), as the contract declares them."""
    return {
        handler_name(operation["x-openapi-router-controller"], operation["operationId"]): (
            path,
            method.upper(),
        )
        for path, item in contract["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def _operation_ids(contract: dict[str, Any]) -> dict[str, str]:
    """handler name -> operationId: the metrics' label, never the client's path."""
    return {
        handler_name(operation["x-openapi-router-controller"], operation["operationId"]): (
            operation["operationId"]
        )
        for item in contract["paths"].values()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def _allow_cross_origin(
    app: AsyncApp, settings: Settings, operations: dict[str, tuple[str, str]]
) -> None:
    settings.require_safe_cors()
    app.add_middleware(
        AllowedOriginsOnlyCors,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        allow_origins=settings.allowed_origins,
        allow_methods=sorted({method for _, method in operations.values()}),
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
        allow_credentials=settings.cors_allow_credentials,
        max_age=600,
    )


def _unauthorized(_request: ConnexionRequest, error: Unauthorized) -> ConnexionResponse:
    # Connexion's own 401s (no or non-bearer Authorization header) carry no challenge.
    headers = getattr(error, "headers", None) or {"WWW-Authenticate": "Bearer"}
    return problem(status=401, title="Unauthorized", detail=error.detail, headers=headers)


def _quota_exceeded(_request: ConnexionRequest, error: Exception) -> ConnexionResponse:
    metrics.QUOTA_REFUSALS.inc()
    limit = error.limit if isinstance(error, TaskQuotaExceededError) else 0
    return QuotaExceeded(limit).to_problem()


def _database_unavailable(_request: ConnexionRequest, error: Exception) -> ConnexionResponse:
    log.warning("database unavailable: %s", type(error).__name__)
    if isinstance(error, sa_exc.TimeoutError):
        metrics.POOL_TIMEOUTS.inc()
    elif isinstance(getattr(error, "orig", None), DeadlineExceeded):
        metrics.DB_DEADLINES.inc()
    return ServiceUnavailable().to_problem()


class BindContext:
    """Bind per-app objects (the engine, the token verifier) to each request's context, so
    two apps (SQLite and PostgreSQL) can live in one process."""

    def __init__(self, app: ASGIApp, bindings: dict[ContextVar[Any], Any]) -> None:
        self.app = app
        self.bindings = bindings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tokens = [var.set(value) for var, value in self.bindings.items()]
        try:
            await self.app(scope, receive, send)
        finally:
            for var, token in zip(self.bindings, tokens, strict=True):
                var.reset(token)
