"""Corrections to Connexion's routing."""

import re
from collections import defaultdict
from typing import Any

import starlette.convertors
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from starlette.exceptions import HTTPException
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send


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


_ANY_SEGMENT = _AnySegmentInteger()


def _route_integers_by_any_segment(route: Route) -> None:
    """Re-route this route's integer parameters through `_AnySegmentInteger`, on the route
    itself: Starlette's converter table is process-wide, and Connexion resets its `int`
    entry whenever a routing middleware is built."""
    for name, convertor in list(route.param_convertors.items()):
        if isinstance(convertor, starlette.convertors.IntegerConvertor):
            digits = f"(?P<{name}>{convertor.regex})"
            route.param_convertors[name] = _ANY_SEGMENT
            route.path_regex = re.compile(
                route.path_regex.pattern.replace(digits, f"(?P<{name}>{_ANY_SEGMENT.regex})")
            )


class _MethodNotAllowed:
    def __init__(self, methods: set[str]) -> None:
        self.allow = ", ".join(sorted(methods))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise HTTPException(status_code=405, headers={"Allow": self.allow})


def _add_method_not_allowed_routes(routes: list[Any]) -> None:
    # After each path's last route, an any-method route answers 405 with every method of
    # that path. Right after it, not at the end: `/tasks/changes` must answer PUT with 405
    # before `/tasks/{task_id}` (whose id matches any segment) takes it for a task id.
    methods: defaultdict[str, set[str]] = defaultdict(set)
    last: dict[str, int] = {}
    for index, route in enumerate(routes):
        if isinstance(route, Route) and route.methods:
            methods[route.path] |= route.methods
            last[route.path] = index
    for path, index in sorted(last.items(), key=lambda item: item[1], reverse=True):
        routes.insert(index + 1, Route(path, _MethodNotAllowed(methods[path])))


class ContractRouting(RoutingMiddleware):
    """Three corrections to Connexion's routing middleware.

    - By default, Connexion routes `{task_id}` (an integer) with a digits-only converter, so
      `/tasks/abc` matches no route and answers 404 (connexion #770); we override it because
      the contract promises 422 for a bad id: any segment matches, and the validator refuses
      what is not a number. Pinned by: tests/api/test_get_task.py (`/tasks/abc` is 422).

    - By default, Connexion adds one Starlette route per operation, and Starlette's 405 names
      only the methods of the first route whose path matched; we override it because RFC 9110
      wants `Allow` to list every method of the resource (found by Schemathesis).
      Pinned by: tests/api/test_contract_edges.py (405 lists GET, PUT, PATCH, DELETE; PUT on
      `/tasks/changes` is a 405, not a task id).
    - By default, Starlette's mount pattern ends in `.*`, which stops at a newline, so a user
      id holding `%0A` matched no operation: a 404 instead of the contract's 403 or 422.
      Pinned by: tests/api/test_contract_edges.py (a user id with a newline is 403).

    Can go when: Connexion validates path parameters before converting them, builds one
    route per path (or Starlette lists all methods), and Starlette compiles mount patterns
    with DOTALL."""

    def add_api(self, *args: Any, **kwargs: Any) -> None:
        super().add_api(*args, **kwargs)
        mount = self.router.routes[-1]
        assert isinstance(mount, Mount)
        mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
        for route in mount.routes:
            if isinstance(route, Route):
                _route_integers_by_any_segment(route)
        _add_method_not_allowed_routes(mount.routes)


class SwaggerUIOnItsPaths(SwaggerUIMiddleware):
    """By default, Connexion's Swagger UI middleware copies the scope and runs a Starlette
    router pass (a mount and every console route) on every request, API calls included,
    before handing the copy on; we override it because only the console's own paths can
    match: any other path goes on at once, still as a copy of the scope, so what follows sees
    exactly what it saw. A path that starts like a console route (less a trailing slash,
    which Starlette's redirect may add or drop) takes the router as before.
    Pinned by: tests/consumers/test_swagger_console.py and tests/api/test_contract_edges.py
    (the console and the contract are served); the saving is in docs/performance.md.
    Can go when: Connexion's Swagger UI middleware routes only its own paths."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self.prefixes: tuple[str, ...] = ()

    def add_api(self, *args: Any, **kwargs: Any) -> None:
        super().add_api(*args, **kwargs)
        self.prefixes = tuple(_static_prefixes(self.router.routes, ""))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(self.prefixes):
            await self.app({**scope}, receive, send)
            return
        await super().__call__(scope, receive, send)


def _static_prefixes(routes: list[Any], parent: str) -> list[str]:
    """Each route's path up to its first parameter, without a trailing slash."""
    prefixes: list[str] = []
    for route in routes:
        path = parent + getattr(route, "path", "")
        if isinstance(route, Mount) and route.routes:
            # A mounted router passes on what none of its routes match.
            prefixes.extend(_static_prefixes(route.routes, path))
        else:
            prefixes.append(path.split("{", 1)[0].rstrip("/"))
    return prefixes
