"""ASGI middleware the app adds around Connexion's own stack."""

import json
import re
import time
from collections import defaultdict
from contextvars import ContextVar
from typing import Any

import anyio
import starlette.convertors
from connexion.middleware.routing import RoutingMiddleware
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handlers.problems import HeadTooLarge, PayloadTooLarge, RequestTimeout

MAX_BODY_BYTES = 64 * 1024
MAX_URL_BYTES = 8 * 1024
MAX_HEADER_BYTES = 16 * 1024


class HeadSizeLimit:
    """414 for a URL, 431 for headers over the limit. The server's own limit (h11's)
    only applies to a head that arrives in pieces, not to one read in a single chunk."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if len(scope.get("raw_path") or b"") + len(scope["query_string"]) > MAX_URL_BYTES:
                raise HeadTooLarge(414, "URI Too Long", f"The URL is over {MAX_URL_BYTES} bytes.")
            if sum(len(name) + len(value) for name, value in scope["headers"]) > MAX_HEADER_BYTES:
                raise HeadTooLarge(
                    431,
                    "Request Header Fields Too Large",
                    f"The headers are over {MAX_HEADER_BYTES} bytes.",
                )
        await self.app(scope, receive, send)


class BodySizeLimit:
    """413 for a body over the limit, counted while it is read and before it is parsed;
    408 for a body that takes too long to arrive, so a slow client cannot hold a request."""

    def __init__(
        self,
        app: ASGIApp,
        timeout_seconds: float,
        max_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise PayloadTooLarge(self.max_bytes)
        received = 0
        deadline = time.monotonic() + self.timeout_seconds
        body_complete = False

        async def limited_receive() -> Message:
            nonlocal received, body_complete
            if body_complete:  # later calls wait for the client to disconnect
                return await receive()
            message = await self._receive_by(deadline, receive)
            body_complete = not message.get("more_body", False)
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise PayloadTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)

    async def _receive_by(self, deadline: float, receive: Receive) -> Message:
        try:
            with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                return await receive()
        except TimeoutError:
            raise RequestTimeout(self.timeout_seconds) from None


class DefaultContentType:
    """A body sent without Content-Type is JSON. Connexion validates such a body as JSON
    but then hands the handler raw bytes; naming the type up front makes both agree."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "content-type" not in Headers(scope=scope):
            scope = {**scope, "headers": [*scope["headers"], (b"content-type", JSON_TYPE)]}
        await self.app(scope, receive, send)


JSON_TYPE = b"application/json"


class ServeContract:
    """Serve the contract as written. Connexion serves a copy with every `$ref`
    inlined, which makes generated clients lose their type names."""

    def __init__(
        self, app: ASGIApp, contract: dict[str, Any], text: str, url_prefix: str = "/api"
    ) -> None:
        self.app = app
        self.routes = {
            f"{url_prefix}/openapi.json": Response(
                json.dumps(contract), media_type="application/json"
            ),
            f"{url_prefix}/openapi.yaml": Response(text, media_type="text/yaml"),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if response is not None and scope["method"] in ("GET", "HEAD"):
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BindContext:
    """Bind per-app objects (the engine, the token verifier) to each request's context."""

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


class _AnySegmentInteger(starlette.convertors.Convertor[Any]):
    """Matches any path segment; a non-number stays a string for the validator to refuse."""

    regex = "[^/]+"

    def convert(self, value: str) -> Any:
        try:
            return int(value)
        except ValueError:
            return value

    def to_string(self, value: Any) -> str:
        return str(value)


class _MethodNotAllowed:
    """405 naming every method of the path, not only those of the first route that matched it."""

    def __init__(self, methods: set[str]) -> None:
        self.allow = ", ".join(sorted(methods))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise HTTPException(status_code=405, headers={"Allow": self.allow})


def _add_method_not_allowed_routes(routes: list[Any]) -> None:
    # Connexion adds one route per operation, and Starlette's 405 lists only the methods of the
    # first route whose path matches. A last, any-method route per path answers the rest.
    methods: defaultdict[str, set[str]] = defaultdict(set)
    for route in routes:
        if isinstance(route, Route) and route.methods:
            methods[route.path] |= route.methods
    routes.extend(Route(path, _MethodNotAllowed(allowed)) for path, allowed in methods.items())


def any_segment_routing(routing: type[RoutingMiddleware]) -> type[RoutingMiddleware]:
    """Connexion routes integer path parameters with a digits-only converter, so
    `/tasks/abc` would be a 404 although the contract promises 422 for a bad id."""

    class AnySegmentRouting(routing):
        def __init__(self, app: ASGIApp) -> None:
            super().__init__(app)
            starlette.convertors.register_url_convertor("int", _AnySegmentInteger())

        def add_api(self, *args: Any, **kwargs: Any) -> None:
            super().add_api(*args, **kwargs)
            mount = self.router.routes[-1]
            assert isinstance(mount, Mount)
            # Starlette's mount pattern ends in `.*`, so a path holding a newline (%0A) would
            # match no operation at all: a 404 instead of the 403 or 422 the contract promises.
            mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
            _add_method_not_allowed_routes(mount.routes)

    return AnySegmentRouting
