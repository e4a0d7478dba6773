"""Bearer-token verification. `handlers.security.verify_bearer_token` (the contract's
`x-bearerInfoFunc`) calls the app's verifier before the request is validated.

Two kinds of token are accepted, each only against its own kind of key: HS256/384/512
with the shared secret, and the asymmetric algorithms of Better Auth's JWT plugin with the
public key its JWKS publishes under the token's `kid`. An HS* token is never checked
against a public key and an asymmetric token never against the secret."""

import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jwt

from service.jwks import ASYMMETRIC_ALGORITHMS, JwksCache
from service.problems import InvalidToken
from service.settings import Settings

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ("sub", "exp")
VERIFIED_TOKENS_KEPT = 4096

# The first matching class names the reason; subclasses come before their bases.
REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "The token has expired."),
    (jwt.ImmatureSignatureError, "The token is not valid yet."),
    (jwt.InvalidIssuerError, "The token's issuer is not accepted."),
    (jwt.InvalidAudienceError, "The token's audience is not accepted."),
    (jwt.InvalidAlgorithmError, "The token's algorithm does not match its key."),
    (jwt.InvalidSignatureError, "The token's signature does not verify."),
    (jwt.InvalidKeyError, "The token's signing key is too weak to be trusted."),
)


@dataclass(frozen=True)
class ClaimRules:
    """The `iss` and `aud` a token must carry; None checks nothing."""

    issuer: str | None = None
    audience: str | None = None


@dataclass(frozen=True)
class _Check:
    key: str | jwt.PyJWK
    algorithm: str
    rules: ClaimRules
    kid: str | None = None


@dataclass(frozen=True)
class _Verified:
    claims: dict[str, Any]
    until: float  # when `exp`, with the leeway, stops the token
    kid: str | None  # the JWKS key that verified it; None for the shared secret
    key: object = None  # that key's object: a key replaced under the same kid is another


class TokenVerifier:
    def __init__(
        self,
        secret: str | None = None,
        *,
        jwks: JwksCache | None = None,
        secret_rules: ClaimRules = ClaimRules(),
        jwks_rules: ClaimRules = ClaimRules(),
    ) -> None:
        self._secret = secret
        self._jwks = jwks
        self._secret_rules = secret_rules
        self._jwks_rules = jwks_rules
        # A frontend sends the same token for minutes: verifying it once per lifetime
        # saves a signature check per request (an eighth of a list request's CPU).
        self._verified: dict[str, _Verified] = {}

    async def verify(self, token: str) -> dict[str, Any]:
        known = self._verified.get(token)
        if known is not None and self._still_valid(known):
            return known.claims
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("The token is malformed.") from None
        check = await self._check_for(header)
        claims = _decode(token, check)
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise InvalidToken("The token's 'sub' claim is not a user id.")
        expires = claims["exp"]
        # PyJWT takes a numeric string for `exp`; RFC 7519 §4.1.4 says NumericDate.
        if isinstance(expires, bool) or not isinstance(expires, int | float):
            raise InvalidToken("The token's 'exp' claim is not a number.")
        self._remember(token, _Verified(claims, expires + LEEWAY_SECONDS, check.kid, check.key))
        return claims

    def _still_valid(self, known: _Verified) -> bool:
        """As valid as a fresh check would find it: not expired, and for a JWKS token,
        its key still published in a JWKS that is not stale."""
        if time.time() >= known.until:
            return False
        # Keyed by the token and the key that verified it: the same key object must still
        # be the one published under that kid.
        return known.kid is None or (
            self._jwks is not None and self._jwks.identity(known.kid) is known.key
        )

    def _remember(self, token: str, verified: _Verified) -> None:
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            del self._verified[next(iter(self._verified))]  # the oldest entry
        self._verified[token] = verified

    async def _check_for(self, header: dict[str, Any]) -> _Check:
        algorithm = header.get("alg")
        if algorithm in HMAC_ALGORITHMS and self._secret is not None:
            return _Check(self._secret, algorithm, self._secret_rules)
        if algorithm in ASYMMETRIC_ALGORITHMS and self._jwks is not None:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise InvalidToken("The token names no signing key ('kid').")
            key = await self._jwks.key(kid)
            # The key's own algorithm, never the header's: a mismatch fails in decode.
            return _Check(key, key.algorithm_name, self._jwks_rules, kid)
        raise InvalidToken("The token's signing algorithm is not accepted.")

    def mint(self, user_id: str, ttl_seconds: int) -> str:
        """An HS256 token for manual checks, carrying the `iss`/`aud` the secret requires."""
        if self._secret is None:
            raise ValueError("minting a token needs BETTER_AUTH_SECRET")
        issued = int(time.time())
        payload: dict[str, Any] = {"sub": user_id, "iat": issued, "exp": issued + ttl_seconds}
        if self._secret_rules.issuer is not None:
            payload["iss"] = self._secret_rules.issuer
        if self._secret_rules.audience is not None:
            payload["aud"] = self._secret_rules.audience
        return jwt.encode(payload, self._secret, algorithm="HS256")


def _decode(token: str, check: _Check) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            check.key,
            algorithms=[check.algorithm],
            leeway=LEEWAY_SECONDS,
            issuer=check.rules.issuer,
            audience=check.rules.audience,
            options={
                "require": list(REQUIRED_CLAIMS),
                # Better Auth always sets `aud`; it is checked only when one is configured.
                "verify_aud": check.rules.audience is not None,
                "enforce_minimum_key_length": True,
            },
        )
    except jwt.MissingRequiredClaimError as error:
        raise InvalidToken(f"The token has no '{error.claim}' claim.") from None
    except jwt.PyJWTError as error:
        reason = next((text for kind, text in REASONS if isinstance(error, kind)), None)
        raise InvalidToken(reason or "The token is malformed.") from None
    return claims


def verifier_from(settings: Settings) -> TokenVerifier:
    """JWT_ISSUER / JWT_AUDIENCE bind every token; Better Auth's tokens default to its URL."""
    settings.require_auth()
    secret = settings.better_auth_secret
    explicit = ClaimRules(settings.jwt_issuer or None, settings.jwt_audience or None)
    jwks = None
    if settings.jwks_url is not None:
        jwks = JwksCache(
            settings.jwks_url,
            timeout=settings.jwks_timeout,
            refresh_interval=settings.jwks_refresh_interval,
            max_age=settings.jwks_max_age,
        )
    return TokenVerifier(
        secret.get_secret_value() if secret is not None else None,
        jwks=jwks,
        secret_rules=explicit,
        jwks_rules=ClaimRules(
            explicit.issuer or settings.better_auth_url,
            explicit.audience or settings.better_auth_url,
        ),
    )


# Set per request by the app, like the database engine.
current_verifier: ContextVar[TokenVerifier] = ContextVar("current_verifier")
