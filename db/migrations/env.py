"""Alembic environment: the URL comes from the caller (`todo-api migrate`) or DATABASE_URL."""

import os

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

import db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from db.engine import DEFAULT_DATABASE_URL, normalize_url

config = context.config
url = (
    config.get_main_option("sqlalchemy.url")
    or os.environ.get("DATABASE_URL")
    or DEFAULT_DATABASE_URL
)


def run_migrations_online() -> None:
    # Not the app's autocommit engine: a migration runs in one transaction, so on
    # PostgreSQL a failed one leaves nothing half-done.
    engine = create_engine(normalize_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=SQLModel.metadata,
                compare_type=True,
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run_migrations_online()
