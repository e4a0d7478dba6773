"""Where Connexion 3.3's behaviour differs from what the contract promises, and the piece
that mends it. Each class or function says what Connexion does by default, why we override
it, the upstream issue, the test that pins it and when it can go; `docs/decisions/0002`
is the index. Nothing here runs at import time: `service.app.create_app` wires each piece."""

from typing import Any

from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware

from service.patches.routing import ContractRouting, SwaggerUIOnItsPaths
from service.patches.validation import PrebuiltRequestValidation


def use_corrected_middleware(middlewares: list[Any]) -> None:
    """Replace Connexion's routing, Swagger UI and request validation middlewares by ours,
    in place. Called once every middleware is added: `add_middleware` finds its position by
    Connexion's classes."""
    replaced = {
        RoutingMiddleware: ContractRouting,
        SwaggerUIMiddleware: SwaggerUIOnItsPaths,
        RequestValidationMiddleware: PrebuiltRequestValidation,
    }
    middlewares[:] = [replaced.get(m, m) for m in middlewares]
