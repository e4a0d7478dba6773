"""The app at the end of Connexion's middleware stack: calls the handler of each operation.

Connexion's middlewares still route, authenticate and validate every request from the
contract; this replaces only the last step, Connexion's `AsyncASGIApp`. By default,
Connexion builds a new `StarletteDecorator` on every request (a URI parser, a third request
wrapper, several closures, an `inspect.signature`), deep-copies the query defaults, and
parses the JSON body a second time; we override it because that was the largest part of a
request's framework CPU (docs/performance.md). Here each operation gets one `Plan`, built at
start-up from the contract and the handler's signature, and the body is the one the
validator parsed (`service.patches.validation` leaves it in the scope).

The binding rules are Connexion 3.3's own (`connexion.decorators.parameter.get_arguments`),
reused function by function where they are pure: path and query parameters by their
sanitised names, typed as Connexion types them, query defaults from the schema, the body
(or the schema's default, `{}` when none) under `x-body-name` or `body`, and the values the
security check put in the context (`token_info`, `user`) when the handler names them.
Header and cookie parameters are validated but, as in Connexion, not passed: a handler reads
them from `connexion.request`, which keeps working. Responses are built by Connexion's own
response decorator code, so status, headers and bodies are byte for byte what they were.

A request the plan does not cover (a form or multipart body, a body no validator parsed, a
TRACE) goes through Connexion's own per-request decorator, as before.
Pinned by: tests/api/test_dispatch.py (the same answers as Connexion's app, request by
request, for every kind of parameter and body) and every API test.
Can go when: Connexion builds its decorators once per operation."""

import asyncio
import copy
import functools
import typing as t

import anyio.to_thread
from connexion.apps.abstract import AbstractApp
from connexion.apps.asynchronous import AsyncApi, AsyncApp, AsyncASGIApp, AsyncOperation
from connexion.context import context as connexion_context
from connexion.decorators.parameter import (
    CONTEXT_NAME,
    _get_query_defaults,
    _get_val_from_param,
    pythonic,
    sanitized,
    unwrap_decorators,
)
from connexion.decorators.response import AsyncResponseDecorator
from connexion.frameworks.starlette import Starlette as StarletteFramework
from connexion.http_facts import FORM_CONTENT_TYPES
from connexion.lifecycle import ConnexionResponse
from connexion.operations import AbstractOperation
from connexion.utils import deep_merge, inspect_function_arguments, is_null, is_nullable
from python_multipart.multipart import parse_options_header
from starlette.datastructures import QueryParams
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

# Where the request validators leave what they parsed, for the plan to reuse.
PARSED_BODY = "tasks_api.parsed_body"
PARSED_PARAMETERS = "tasks_api.parsed_parameters"
_IMMUTABLE = (str, int, float, bool, type(None))


def _content_type(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"content-type":
            return str(value.decode("latin-1"))
    return "application/octet-stream"


@functools.lru_cache(maxsize=256)
def _mimetype(content_type: str) -> str:
    # As Connexion's `ConnexionRequest.mimetype`: lower-cased, parameters dropped.
    return parse_options_header(content_type)[0].decode()


class Plan:
    """One operation's call: how to bind its arguments, call its handler, encode its answer."""

    def __init__(self, operation: AbstractOperation, fallback: AsyncOperation) -> None:
        self.fallback = fallback
        function = operation.function
        self.function = function
        self.is_coroutine = asyncio.iscoroutinefunction(function)
        arguments, self.has_kwargs = inspect_function_arguments(unwrap_decorators(function))
        self.arguments = frozenset(arguments)
        sanitize = pythonic if fallback.pythonic_params else sanitized
        self.sanitize = functools.lru_cache(maxsize=64)(sanitize)
        parameters = operation.parameters
        self.path_definitions = {p["name"]: p for p in parameters if p["in"] == "path"}
        self.query_definitions = {p["name"]: p for p in parameters if p["in"] == "query"}
        self.query_defaults = _get_query_defaults(self.query_definitions)
        # Connexion deep-copies the defaults on every request; plain values need no copy.
        self.copy_defaults = not all(
            isinstance(v, _IMMUTABLE) for v in self.query_defaults.values()
        )
        self.uri_parser = operation.uri_parser_class(parameters, operation.body_definition())
        self.is_trace = operation.method.upper() == "TRACE"
        self.body_defined = operation.is_request_body_defined
        self.body_name = sanitize(operation.body_name("")) if self.body_defined else ""
        self.body_wanted = self.body_defined and (
            self.has_kwargs or self.body_name in self.arguments
        )
        self.body_schemas = {
            media_type.lower(): operation.body_schema(media_type)
            for media_type in operation.consumes
        }
        self.response = AsyncResponseDecorator(
            framework=StarletteFramework, jsonifier=fallback.jsonifier
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kwargs = self.bind(scope)
        if kwargs is None:
            await self.fallback(scope, receive, send)
            return
        if self.is_coroutine:
            answer = await self.function(**kwargs)
        else:
            answer = await anyio.to_thread.run_sync(functools.partial(self.function, **kwargs))
        await self.encode(answer)(scope, receive, send)

    def bind(self, scope: Scope) -> dict[str, t.Any] | None:
        """The handler's keyword arguments, or None for a request the plan leaves to Connexion."""
        mimetype = _mimetype(_content_type(scope))
        if self.is_trace or mimetype in FORM_CONTENT_TYPES:
            return None  # Connexion reads form fields and files from the request itself
        extensions = scope.get("extensions") or {}
        parsed = extensions.get(PARSED_PARAMETERS)
        if parsed is None:
            path_params, query_params = self._parse_parameters(scope)
        else:
            path_params, query_params = parsed
        kwargs: dict[str, t.Any] = {}
        self._bind_path(path_params, kwargs)
        self._bind_query(query_params, kwargs)
        if self.body_wanted and not self._bind_body(mimetype, extensions, kwargs):
            return None
        self._bind_context(extensions, kwargs)
        return kwargs

    def _parse_parameters(self, scope: Scope) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
        args = QueryParams(scope.get("query_string", b""))
        query = self.uri_parser.resolve_query({k: args.getlist(k) for k in args})
        return self.uri_parser.resolve_path(scope.get("path_params", {})), query

    def _bind_path(self, path_params: dict[str, t.Any], kwargs: dict[str, t.Any]) -> None:
        for name, value in path_params.items():
            definition = self.path_definitions.get(name)
            kwargs[self.sanitize(name)] = (
                value if definition is None else _get_val_from_param(value, definition)
            )

    def _bind_query(self, query_params: dict[str, t.Any], kwargs: dict[str, t.Any]) -> None:
        defaults = self.query_defaults
        values = deep_merge(
            copy.deepcopy(defaults) if self.copy_defaults else dict(defaults), query_params
        )
        for name, value in values.items():
            key = self.sanitize(name)
            definition = self.query_definitions.get(name)
            if definition is not None and (self.has_kwargs or key in self.arguments):
                kwargs[key] = _get_val_from_param(value, definition)

    def _bind_body(
        self, mimetype: str, extensions: dict[str, t.Any], kwargs: dict[str, t.Any]
    ) -> bool:
        """The validated body, as Connexion's `_get_body_argument_json` passes it; False
        when no validator parsed this request's body."""
        schema = self.body_schemas.get(mimetype)
        if schema is None or PARSED_BODY not in extensions:
            return False
        body = extensions[PARSED_BODY]
        if is_nullable(schema) and is_null(body):
            body = None
        elif body is None:
            body = copy.deepcopy(schema.get("default", {}))
        kwargs[self.body_name] = body
        return True

    def _bind_context(self, extensions: dict[str, t.Any], kwargs: dict[str, t.Any]) -> None:
        context = extensions.get("connexion_context") or {}
        for key, value in context.items():
            if self.has_kwargs or key in self.arguments:
                kwargs[key] = value
        if CONTEXT_NAME in self.arguments:
            kwargs[CONTEXT_NAME] = connexion_context

    def encode(self, answer: t.Any) -> Response:
        """As Connexion's response decorator: a tuple, a value or a response object."""
        if isinstance(answer, Response):
            return answer
        if isinstance(answer, ConnexionResponse):
            response: Response = StarletteFramework.connexion_to_framework_response(answer)
            return response
        built: Response = self.response.build_framework_response(answer)
        return built


class DispatchApi(AsyncApi):
    def make_operation(self, operation: AbstractOperation) -> t.Any:
        fallback = super().make_operation(operation)
        return Plan(operation, fallback)


class Dispatch(AsyncASGIApp):
    """Connexion's `AsyncASGIApp` with a `Plan` per operation instead of its decorators."""

    api_cls = DispatchApi


class ContractApp(AsyncApp):
    """Connexion's `AsyncApp`, its middleware stack unchanged, ending in `Dispatch`."""

    def __init__(self, import_name: str, **kwargs: t.Any) -> None:
        self._middleware_app = Dispatch()
        # AsyncApp's own __init__ only sets `_middleware_app` to its default and goes on here.
        AbstractApp.__init__(self, import_name, **kwargs)
