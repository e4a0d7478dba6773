"""Connexion inspects function signatures on every request; these hand it what it needs once."""

import inspect
import re
from typing import Any

from connexion.lifecycle import ConnexionRequest
from connexion.resolver import Resolver
from connexion.security import BearerSecurityHandler


def snake_case(operation_id: str) -> str:
    """`listTasks` -> `list_tasks`: the handler's name, and the generated Python client's."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()


def handler_name(controller: str, operation_id: str) -> str:
    """Also the operation's id at request time: Connexion routes by the resolved name."""
    return f"{controller}.{snake_case(operation_id)}"


class SnakeCaseResolver(Resolver):
    """`operationId: listTasks` with `x-openapi-router-controller: handlers.tasks` resolves
    to `handlers.tasks.list_tasks` (the project's one naming rule).

    By default, Connexion calls `inspect.signature` on the handler on every request (about
    5 % of its CPU); we override it by storing the signature on the function once, which
    `inspect.signature` then returns at once.
    Pinned by: every API test (a wrong signature breaks argument binding); the saving is
    measured in docs/performance.md. Can go when: Connexion caches the signature itself."""

    def resolve_operation_id(self, operation: Any) -> str:
        return handler_name(operation.router_controller, operation.operation_id)

    def resolve_function_from_operation_id(self, operation_id: str) -> Any:
        function = super().resolve_function_from_operation_id(operation_id)
        function.__signature__ = inspect.signature(function)
        return function


class BearerHandler(BearerSecurityHandler):
    """By default, Connexion's bearer check inspects the `x-bearerInfoFunc`'s signature twice
    on every request to learn whether it takes the request (about 5 % of a request's CPU);
    we override it because ours always does.
    Pinned by: tests/api/test_auth.py (403 for another user's path needs the request).
    Can go when: Connexion inspects the function once, at start-up."""

    def check_bearer_token(self, token_info_func: Any) -> Any:
        async def check(request: ConnexionRequest, token: str) -> dict[str, Any]:
            claims: dict[str, Any] = await token_info_func(token, request=request)
            return claims

        return check
