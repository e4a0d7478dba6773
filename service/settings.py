"""Settings, read from the environment and an optional `.env` file."""

import ipaddress
from contextvars import ContextVar
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from db.engine import DEFAULT_DATABASE_URL

JWKS_PATH = "/api/auth/jwks"  # where Better Auth's JWT plugin publishes its public keys
MIN_SECRET_LENGTH = 32  # RFC 7518 §3.2: an HS256 key is at least as long as the hash.


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    better_auth_secret: SecretStr | None = None
    # Better Auth's base URL: its JWKS is at {url}/api/auth/jwks, and the URL is the `iss`
    # and `aud` its JWT plugin puts in every token.
    better_auth_url: str | None = None
    better_auth_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwks_timeout: float = Field(default=5.0, gt=0)
    jwks_refresh_interval: float = Field(default=5.0, ge=0)
    jwks_max_age: float = Field(default=300.0, ge=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    # Overflow connections are closed when returned: under steady load they churn (a
    # PostgreSQL fork and authentication each), so the default keeps every connection.
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout: float = Field(default=5.0, gt=0)
    db_connect_timeout: int = Field(default=5, ge=1)
    # Sent as `SET LOCAL` in each transaction: Neon's pooled endpoint refuses startup options.
    db_statement_timeout: float = Field(default=10.0, gt=0)
    # Threads beyond the pool's connections would only queue inside the pool.
    worker_threads: int | None = Field(default=None, ge=1)
    db_startup_wait: float = Field(default=30.0, ge=0)
    db_migrations: Literal["upgrade", "check", "off"] = "check"
    cors_origins: str = ""
    # Browsers then send cookies with cross-origin calls; never together with a `*` origin.
    cors_allow_credentials: bool = False
    max_connections: int = Field(default=200, ge=1)
    keep_alive_timeout: int = Field(default=5, ge=1)
    request_body_timeout: float = Field(default=30.0, gt=0)
    request_head_timeout: float = Field(default=10.0, gt=0)
    max_tasks_per_user: int = Field(default=10_000, ge=0)
    swagger_ui: bool = True
    shutdown_timeout: int = Field(default=10, ge=1)
    # After SIGTERM, /ready answers 503 this long, while serving, before shutting down.
    drain_seconds: float = Field(default=0.0, ge=0)
    # Prometheus metrics on their own listener (on HOST); unset, there are none.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # No `trace`: uvicorn then logs every ASGI message, headers (and tokens) included.
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # Checks every response against the contract: the test suite's guard, a cost in production.
    validate_responses: bool = False
    # Sync (docs/decisions/0005): 428 for a write without If-Match; how long a stored answer
    # is replayed for its Idempotency-Key; how long a deleted task's tombstone is kept.
    require_if_match: bool = False
    idempotency_key_ttl: float = Field(default=24 * 3600.0, gt=0)
    tombstone_retention: float = Field(default=30 * 24 * 3600.0, ge=0)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("better_auth_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters long")
        return value

    @property
    def threads(self) -> int:
        """Worker threads for the sync handlers: one per database connection by default."""
        return self.worker_threads or self.db_pool_size + self.db_max_overflow

    @property
    def allowed_origins(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    def require_safe_cors(self) -> None:
        """Refuse credentials for every origin: any site could then call the API as the
        signed-in user."""
        if self.cors_allow_credentials and "*" in self.allowed_origins:
            raise SystemExit(
                "CORS_ALLOW_CREDENTIALS=true cannot be combined with the `*` origin in "
                "CORS_ORIGINS: list the frontend origins one by one."
            )

    @field_validator("better_auth_url", "better_auth_jwks_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an https:// URL")
        # Whoever answers a plain-HTTP fetch chooses the trusted keys (RFC 8725 §3.10).
        if value.startswith("http://") and not _is_loopback(urlsplit(value).hostname):
            raise ValueError(
                "must be an https:// URL: the signing keys are trusted only over TLS "
                "(http:// is allowed for loopback hosts only)"
            )
        return value.rstrip("/")

    @property
    def jwks_url(self) -> str | None:
        if self.better_auth_jwks_url or not self.better_auth_url:
            return self.better_auth_jwks_url
        return f"{self.better_auth_url}{JWKS_PATH}"

    def require_auth(self) -> None:
        """Refuse to serve without a way to verify tokens."""
        if self.better_auth_secret is None and self.jwks_url is None:
            raise SystemExit(
                "No token verification is configured: set BETTER_AUTH_URL (the Better Auth "
                "server, whose JWKS at /api/auth/jwks verifies its tokens), or "
                "BETTER_AUTH_JWKS_URL, or BETTER_AUTH_SECRET (the secret shared with the "
                f"frontend for HS256 tokens, at least {MIN_SECRET_LENGTH} characters), or both."
            )


# Set per request by the app, like the engine: handlers read the settings they need from it.
current_settings: ContextVar[Settings] = ContextVar("current_settings")


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True  # RFC 6761 §6.3: always the loopback interface
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
