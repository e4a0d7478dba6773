"""`todo-api`: serve the API, apply migrations, mint a token for manual checks."""

import argparse
import sys

import uvicorn
from pydantic import ValidationError

from db.migrate import upgrade
from handlers.auth import TokenVerifier
from handlers.config import Settings


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = _load_settings()
    if args.command == "serve":
        _serve(settings, args)
    elif args.command == "migrate":
        upgrade(settings.database_url)
        print("Database is at the latest migration.")
    elif args.command == "token":
        settings.require_auth()
        assert settings.better_auth_secret is not None
        verifier = TokenVerifier(settings.better_auth_secret.get_secret_value())
        print(verifier.mint(args.user_id, args.ttl))


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


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    settings.require_auth()
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
    uvicorn.run(
        "handlers.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers or settings.workers,
        log_level=settings.log_level,
    )


if __name__ == "__main__":
    main()
