"""The composition root: `create_app()` builds the engine, loads the contract and
wires errors and middleware. Nothing connects to anything at import time."""

import inspect
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
import yaml
from connexion import AsyncApp
from connexion.exceptions import Unauthorized
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.middleware import ConnexionMiddleware, MiddlewarePosition
from connexion.middleware.routing import RoutingMiddleware
from connexion.options import SwaggerUIOptions
from connexion.problem import problem
from connexion.resolver import Resolver
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from starlette.middleware.cors import CORSMiddleware

from db.engine import current_engine, make_engine
from handlers.auth import BearerHandler, current_verifier, verifier_from
from handlers.config import Settings
from handlers.logs import REQUEST_ID_HEADER, RequestLog
from handlers.middleware import (
    BindContext,
    BodySizeLimit,
    DefaultContentType,
    HeadSizeLimit,
    ServeContract,
    any_segment_routing,
)
from handlers.problems import ServiceUnavailable
from handlers.validation import VALIDATOR_MAP

CONTRACT = Path(__file__).resolve().parent.parent / "openapi" / "tasks.yaml"
log = logging.getLogger(__name__)

# Errors that mean "the database cannot be reached now", not "this request is wrong".
DATABASE_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def snake_case(operation_id: str) -> str:
    """`listTasks` -> `list_tasks`: the handler's name, and the generated Python client's."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()


class SnakeCaseResolver(Resolver):
    """`operationId: listTasks` with `x-openapi-router-controller: handlers.tasks`
    resolves to `handlers.tasks.list_tasks`."""

    def resolve_operation_id(self, operation: Any) -> str:
        return handler_name(operation.router_controller, operation.operation_id)

    def resolve_function_from_operation_id(self, operation_id: str) -> Any:
        function = super().resolve_function_from_operation_id(operation_id)
        # Connexion inspects the handler's signature on every request (about 5 % of its
        # CPU); inspect.signature returns a precomputed __signature__ at once.
        function.__signature__ = inspect.signature(function)
        return function


def handler_name(controller: str, operation_id: str) -> str:
    """Also the operation's id at request time: Connexion routes by the resolved name."""
    return f"{controller}.{snake_case(operation_id)}"


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

    middlewares = [
        any_segment_routing(m) if m is RoutingMiddleware else m
        for m in ConnexionMiddleware.default_middlewares
    ]
    app = AsyncApp(
        __name__,
        middlewares=middlewares,
        validator_map=VALIDATOR_MAP,
        security_map={"bearer": BearerHandler},
        lifespan=_lifespan(engine, settings.threads),
    )
    app.add_api(
        CONTRACT,
        resolver=SnakeCaseResolver(),
        validate_responses=settings.validate_responses,
        # An unknown query parameter is a 422 like any other value the contract refuses,
        # rather than silently ignored (a misspelt `?stauts=` would list everything).
        strict_validation=True,
        swagger_ui_options=SwaggerUIOptions(
            swagger_ui_path="/api/ui", spec_path="/api/openapi.json"
        ),
    )
    text = CONTRACT.read_text(encoding="utf-8")
    contract = yaml.safe_load(text)
    app.add_middleware(
        ServeContract, position=MiddlewarePosition.BEFORE_SWAGGER, contract=contract, text=text
    )
    app.add_middleware(
        BindContext,
        position=MiddlewarePosition.BEFORE_SECURITY,
        bindings={current_engine: engine, current_verifier: verifier},
    )
    app.add_middleware(
        BodySizeLimit,
        position=MiddlewarePosition.BEFORE_VALIDATION,
        timeout_seconds=settings.request_body_timeout,
    )
    _add_operations_middleware(app, settings, _operation_paths(contract))
    app.add_error_handler(Unauthorized, _unauthorized)
    for error in DATABASE_UNAVAILABLE:
        app.add_error_handler(error, _database_unavailable)
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
    if settings.allowed_origins:
        _allow_cross_origin(app, settings.allowed_origins, operations)
    app.add_middleware(HeadSizeLimit, position=MiddlewarePosition.BEFORE_SWAGGER)
    app.add_middleware(DefaultContentType, position=MiddlewarePosition.BEFORE_VALIDATION)


def _lifespan(engine: Engine, threads: int) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        # Connexion runs sync handlers on anyio's default thread limiter (40 threads);
        # size it to the connection pool so waiting happens here, not in the pool.
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        log.info("serving with %d worker threads", threads)
        try:
            yield
        finally:
            engine.dispose()
            log.info("database connections closed")

    return lifespan


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


def _allow_cross_origin(
    app: AsyncApp, origins: list[str], operations: dict[str, tuple[str, str]]
) -> None:
    app.add_middleware(
        CORSMiddleware,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        allow_origins=origins,
        allow_methods=sorted({method for _, method in operations.values()}),
        allow_headers=["Authorization", "Content-Type", REQUEST_ID_HEADER],
        expose_headers=["Location", "X-Total-Count", "Retry-After", REQUEST_ID_HEADER],
        max_age=600,
    )


def _unauthorized(_request: ConnexionRequest, error: Unauthorized) -> ConnexionResponse:
    # Connexion's own 401s (no or non-bearer Authorization header) carry no challenge.
    headers = getattr(error, "headers", None) or {"WWW-Authenticate": "Bearer"}
    return problem(status=401, title="Unauthorized", detail=error.detail, headers=headers)


def _database_unavailable(_request: ConnexionRequest, error: Exception) -> ConnexionResponse:
    log.warning("database unavailable: %s", type(error).__name__)
    return ServiceUnavailable().to_problem()
