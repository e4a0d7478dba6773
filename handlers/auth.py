"""Bearer-token verification. Connexion calls `verify_bearer_token` (named by
`x-bearerInfoFunc` in the contract) before validating the request."""

import time
from contextvars import ContextVar
from typing import Any

import jwt
from connexion.lifecycle import ConnexionRequest

from handlers.problems import ForbiddenUser, InvalidToken

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ("sub", "exp")


class TokenVerifier:
    """Verifies tokens signed with the shared secret; the algorithm is pinned to the HS family."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def verify(self, token: str) -> dict[str, Any]:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            if algorithm not in HMAC_ALGORITHMS:
                raise InvalidToken("The token's signing algorithm is not accepted.")
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[algorithm],
                leeway=LEEWAY_SECONDS,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("The token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("The token is not valid yet.") from None
        except jwt.MissingRequiredClaimError as error:
            raise InvalidToken(f"The token has no '{error.claim}' claim.") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("The token's signature does not verify.") from None
        except jwt.PyJWTError:
            raise InvalidToken("The token is malformed.") from None
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise InvalidToken("The token's 'sub' claim is not a user id.")
        return claims

    def mint(self, user_id: str, ttl_seconds: int) -> str:
        issued = int(time.time())
        payload = {"sub": user_id, "iat": issued, "exp": issued + ttl_seconds}
        return jwt.encode(payload, self._secret, algorithm="HS256")


# Set per request by the app, like the database engine.
current_verifier: ContextVar[TokenVerifier] = ContextVar("current_verifier")


def verify_bearer_token(token: str, request: ConnexionRequest) -> dict[str, Any]:
    """Accept the token only on its owner's paths: `sub` must equal the path's `user_id`."""
    claims = current_verifier.get().verify(token)
    if claims["sub"] != request.path_params.get("user_id"):
        raise ForbiddenUser()
    return claims
