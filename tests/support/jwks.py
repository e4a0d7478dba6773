"""Signing keys for every algorithm Better Auth uses, and a real HTTP server on loopback that
publishes their JWKS the way Better Auth does (at /api/auth/jwks, `kid` + `alg`, no `use`)."""

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

from service.settings import JWKS_PATH
from tests.support.postgres import free_port

ALGORITHMS = ("EdDSA", "RS256", "ES256", "ES512", "PS256")


def _private_key(algorithm: str) -> Any:
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm in ("ES256", "ES512"):
        return ec.generate_private_key(ec.SECP256R1() if algorithm == "ES256" else ec.SECP521R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class SigningKey:
    algorithm: str
    private: Any = None
    kid: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        self.private = self.private or _private_key(self.algorithm)

    @property
    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        document = get_default_algorithms()[self.algorithm].to_jwk(public, as_dict=True)
        return {**document, "kid": self.kid, "alg": self.algorithm}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        headers = {"kid": self.kid, **header}
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers=headers)


class JwksServer:
    """Serves `keys` as a JWKS; counts fetches; can go down and come back on the same port;
    `gate` holds every answer while it is clear."""

    def __init__(self) -> None:
        self.port = free_port()
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self._waiting = 0
        self.gate = threading.Event()
        self.gate.set()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def gate_waiting(self) -> bool:
        """A request is being held at the gate."""
        return self._waiting > 0

    def publish(self, *keys: SigningKey) -> None:
        self.keys = [key.jwk for key in keys]

    def start(self) -> None:
        if self._server is not None:
            return
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                owner._waiting += 1
                owner.gate.wait(timeout=30)
                owner._waiting -= 1
                status = 200 if self.path == JWKS_PATH else 404
                body = json.dumps({"keys": owner.keys}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler


def claims_for(user_id: str, issuer: str, **overrides: Any) -> dict[str, Any]:
    """The claims Better Auth's JWT plugin issues (no `nbf`, no `jti`, iss = aud = its URL)."""
    now = int(time.time())
    claims = {
        "id": user_id,
        "name": "Ada",
        "email": "ada@example.com",
        "emailVerified": False,
        "sub": user_id,
        "iat": now,
        "exp": now + 900,
        "iss": issuer,
        "aud": issuer,
    }
    return {**claims, **overrides}
