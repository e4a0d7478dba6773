"""The bearer check the contract names (`x-bearerInfoFunc`)."""

from typing import Any

from connexion.lifecycle import ConnexionRequest

from service.problems import ForbiddenUser
from service.tokens import current_verifier


async def verify_bearer_token(token: str, request: ConnexionRequest) -> dict[str, Any]:
    """Accept the token only on its owner's paths: `sub` must equal the path's `user_id`.
    A coroutine, so that fetching the JWKS does not block the event loop."""
    claims = await current_verifier.get().verify(token)
    if claims["sub"] != request.path_params.get("user_id"):
        raise ForbiddenUser()
    return claims
