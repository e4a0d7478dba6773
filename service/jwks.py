"""The public keys Better Auth signs with, read from its JWKS endpoint.

Fetched on the event loop without blocking it (httpx), with a total timeout, cached, and
refetched when a token names an unknown key id (a rotation) or the cache is older than its
maximum age — but never more often than once per refresh interval, counted from the end of
the last fetch, so a flood of made-up key ids cannot hammer the auth server.

At most one fetch is in flight per process. A request that needs it waits for that one
fetch (itself bounded by the timeout), never for a queue of them; while the auth server is
failing, a request whose key is cached is served from the cache at once, and the retry runs
in the background."""

import asyncio
import logging
import time
from typing import Any

import httpx
import jwt

from service.problems import InvalidToken, ServiceUnavailable

log = logging.getLogger(__name__)

# The algorithms Better Auth's JWT plugin signs with, and the key each one needs.
KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "EdDSA": ("OKP", "Ed25519"),
    "ES256": ("EC", "P-256"),
    "ES512": ("EC", "P-521"),
    "RS256": ("RSA", None),
    "PS256": ("RSA", None),
}
ASYMMETRIC_ALGORITHMS = tuple(KEY_TYPES)

UNREACHABLE = "The signing keys (JWKS) cannot be fetched from the auth server; retry shortly."


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        refresh_interval: float,
        max_age: float,
    ) -> None:
        self.url = url
        self._timeout = timeout
        self._refresh_interval = refresh_interval
        self._max_age = max_age
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._finished_at: float | None = None  # when the last fetch ended, either way
        self._failing = False
        self._in_flight: asyncio.Task[None] | None = None

    async def key(self, kid: str) -> jwt.PyJWK:
        """The key named `kid`: 401 when the auth server does not publish it, 503 when the
        JWKS cannot be fetched and no cached key fits."""
        if kid not in self._keys or self._stale():
            fetch = self._start_fetch()
            # While the auth server fails, a cached key is served at once, not after a wait.
            if fetch is not None and not (self._failing and kid in self._keys):
                await asyncio.shield(fetch)
        found = self._keys.get(kid)
        if found is not None:
            return found
        if self._failing:
            raise ServiceUnavailable(UNREACHABLE)
        raise InvalidToken("The token's signing key is not published by the auth server.")

    def identity(self, kid: str) -> jwt.PyJWK | None:
        """The key object now published under `kid`: a refetch that replaces the key under
        the same `kid` yields a new object, so a token verified by the old one is checked
        again."""
        return self._keys.get(kid) if not self._stale() else None

    def _stale(self) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at >= self._max_age

    def _may_fetch(self) -> bool:
        return (
            self._finished_at is None
            or time.monotonic() - self._finished_at >= self._refresh_interval
        )

    def _start_fetch(self) -> "asyncio.Task[None] | None":
        """The fetch in flight, a new one if none is and the rate limit allows, else None."""
        loop = asyncio.get_running_loop()
        if self._in_flight is not None and self._in_flight.get_loop() is not loop:
            self._in_flight = None  # left behind by an event loop that has since stopped
        if self._in_flight is None and self._may_fetch():
            self._in_flight = loop.create_task(self._refresh())
        return self._in_flight

    async def _refresh(self) -> None:
        # Imported here: `todo-api` imports this module before it sets up the metrics'
        # storage, which prometheus-client chooses at its first import.
        from service import metrics

        metrics.JWKS_FETCHES.inc()
        try:
            keys = parse_jwks(await self._fetch())
        except (httpx.HTTPError, TimeoutError, ValueError) as error:
            # Keep serving the cached keys: a token signed by one of them is still valid.
            log.warning("JWKS fetch from %s failed: %s", self.url, type(error).__name__)
            metrics.JWKS_FAILURES.inc()
            self._failing = True
        else:
            self._keys, self._fetched_at, self._failing = keys, time.monotonic(), False
        finally:
            self._finished_at = time.monotonic()
            self._in_flight = None

    async def _fetch(self) -> Any:
        # A client per fetch: fetches are rare, and a pooled connection would be tied to
        # the event loop that opened it.
        async with (
            asyncio.timeout(self._timeout),
            httpx.AsyncClient(timeout=self._timeout) as client,
        ):
            response = await client.get(self.url, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json()


def parse_jwks(document: Any) -> dict[str, jwt.PyJWK]:
    """The usable keys by `kid`. A key without an allowed `alg`, whose type does not fit its
    `alg`, or meant for encryption, is left out: the algorithm is the key's, never the
    token's choice."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("the JWKS is not a JSON object with a 'keys' list")
    keys = {}
    for entry in document["keys"]:
        key = _usable_key(entry)
        if key is not None:
            keys[entry["kid"]] = key
    return keys


def _usable_key(entry: Any) -> jwt.PyJWK | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
        return None
    algorithm = entry.get("alg")
    expected = KEY_TYPES.get(algorithm) if isinstance(algorithm, str) else None
    # Better Auth sets no `use`; a key marked for encryption never verifies a signature.
    if expected != (entry.get("kty"), entry.get("crv")) or entry.get("use", "sig") != "sig":
        log.warning("JWKS key %r skipped: unsupported alg/kty/crv/use", entry.get("kid"))
        return None
    try:
        return jwt.PyJWK(entry, algorithm=algorithm)
    except jwt.PyJWTError as error:
        log.warning("JWKS key %r skipped: %s", entry.get("kid"), error)
        return None
