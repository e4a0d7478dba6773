import uuid
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlmodel import SQLModel

from db.engine import make_engine
from db.migrate import alembic_config, upgrade
from tests.postgres import PostgresServer


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"empty_{uuid.uuid4().hex[:8]}")


class TestMigrations:
    def test_there_is_a_single_head(self) -> None:
        heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()

        assert len(heads) == 1

    def test_upgrade_then_the_models_and_the_database_agree(self, empty_database: str) -> None:
        upgrade(empty_database)

        engine = make_engine(empty_database)
        try:
            with engine.connect() as connection:
                context = MigrationContext.configure(connection, opts={"compare_type": True})
                assert compare_metadata(context, SQLModel.metadata) == []
                assert "tasks" in inspect(connection).get_table_names()
        finally:
            engine.dispose()

    def test_downgrade_to_base_and_up_again(self, empty_database: str) -> None:
        config = alembic_config(empty_database)
        command.upgrade(config, "head")
        command.downgrade(config, "base")
        command.upgrade(config, "head")

        engine = make_engine(empty_database)
        try:
            assert "tasks" in inspect(engine).get_table_names()
        finally:
            engine.dispose()
