"""`todo-api`: serve the API, apply migrations, mint a token for manual checks."""

import argparse
import functools
import logging
import logging.config
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from pydantic import ValidationError

from db.migrate import upgrade
from service.connections import GuardedHttpToolsProtocol
from service.limits import MAX_HEADER_BYTES, MAX_URL_BYTES
from service.logs import logging_config
from service.settings import Settings
from service.startup import StartupError, prepare_database
from service.tokens import verifier_from

# The most a request head may hold before the server closes the connection: what the app's
# own limits (414, 431) can still answer with a problem, and not a byte more.
MAX_REQUEST_HEAD_BYTES = MAX_URL_BYTES + MAX_HEADER_BYTES
# How long uvicorn's supervisor lets a worker take to start (and to answer its ping) before
# killing it. Its default, 5 s, is shorter than a start on a busy two-core host (imports and
# the contract take seconds): the workers were killed and restarted in a loop.
WORKER_HEALTHCHECK_SECONDS = 30
log = logging.getLogger("service.cli")  # not __name__: it is "__main__" under `python -m`


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = _load_settings()
    if args.command == "serve":
        _serve(settings, args)
    elif args.command == "migrate":
        upgrade(settings.database_url)
        print("Database is at the latest migration.")
    elif args.command == "token":
        _token(settings, args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="todo-api", description="The Tasks API.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API (defaults from HOST, PORT, WORKERS)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    commands.add_parser("migrate", help="apply the database migrations (alembic upgrade head)")
    token = commands.add_parser("token", help="print a short-lived HS256 token for USER_ID")
    token.add_argument("user_id")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    return parser


def _load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        # Name the variable and the rule, never the value: it may be a secret.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']).upper()}: {e['msg']}"
            for e in error.errors()
        )
        sys.exit(f"Invalid configuration: {problems}")


def _token(settings: Settings, args: argparse.Namespace) -> None:
    if settings.better_auth_secret is None:
        sys.exit("`todo-api token` mints HS256 tokens: set BETTER_AUTH_SECRET.")
    print(verifier_from(settings).mint(args.user_id, args.ttl))


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    settings.require_auth()
    settings.require_safe_cors()
    log_config = logging_config(settings.log_level)
    logging.config.dictConfig(log_config)
    try:
        prepare_database(settings)
    except StartupError as error:
        log.critical("cannot start: %s", error)
        sys.exit(1)
    host = args.host or settings.host
    port = args.port or settings.port
    base = f"http://{host}:{port}"
    print(
        f"Tasks API on {base}\n"
        f"  Swagger console: {base}/api/ui/\n"
        f"  Contract:        {base}/api/openapi.json\n"
        f"  A token for the console or curl: {sys.argv[0]} token <user_id>",
        flush=True,
    )
    with _metrics(host, settings.metrics_port):
        uvicorn.run(
            "service.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=args.workers or settings.workers,
            log_level=settings.log_level,
            **_server_limits(settings),
            log_config=log_config,
        )


MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def _metrics(host: str, port: int | None) -> Iterator[None]:
    """A fresh directory where the workers keep their metrics, removed afterwards (a
    previous run's values must not count), and the listener that serves them."""
    if port is None:
        os.environ.pop(MULTIPROC_DIR, None)
        yield
        return
    directory = tempfile.mkdtemp(prefix="todo-api-metrics-")
    os.environ[MULTIPROC_DIR] = directory  # inherited by the workers uvicorn starts
    try:
        # Only now: prometheus-client chooses its storage when first imported.
        from service import metrics

        metrics.serve(host, port)
        print(f"  Metrics:         http://{host}:{port}/metrics", flush=True)
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _server_limits(settings: Settings) -> dict[str, Any]:
    """What bounds a client's hold on the server (see "Operating it" in the README)."""
    return {
        # uvicorn's httptools protocol with a bounded, timed request head and room made near
        # the connection limit (service/connections.py).
        "http": functools.partial(
            GuardedHttpToolsProtocol,
            head_timeout=settings.request_head_timeout,
            max_head_bytes=MAX_REQUEST_HEAD_BYTES,
        ),
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "timeout_graceful_shutdown": settings.shutdown_timeout,
        "lifespan": "on",
        "timeout_worker_healthcheck": WORKER_HEALTHCHECK_SECONDS,
        "access_log": False,  # service.logs.RequestLog writes one JSON line per request
    }


if __name__ == "__main__":
    main()
