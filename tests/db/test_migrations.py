import re
import shutil
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from db.engine import make_engine
from db.migrate import MIGRATIONS, alembic_config, new_revision, upgrade
from tests.support.postgres import PostgresServer


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


class TestNewRevision:
    def test_writes_the_next_numbered_date_prefixed_revision(self, tmp_path: Path) -> None:
        migrations = tmp_path / "migrations"
        shutil.copytree(MIGRATIONS, migrations, ignore=shutil.ignore_patterns("__pycache__"))
        head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
        assert head is not None

        written = new_revision("Add nothing", script_location=migrations)

        expected_number = f"{int(head) + 1:04d}"
        assert re.fullmatch(rf"\d{{8}}_{expected_number}_add_nothing\.py", written.name)
        assert written.name.startswith(date.today().strftime("%Y%m%d"))
        text = written.read_text()
        assert f"revision: str = {expected_number!r}" in text
        assert f"down_revision: str | None = {head!r}" in text
        # The models and the head agree, so autogenerate found nothing to do.
        assert "op." not in text


class TestUpgradeOfAPopulatedDatabase:
    def test_0004_keeps_every_task_and_gives_it_the_new_defaults(self, empty_database: str) -> None:
        config = alembic_config(empty_database)
        command.upgrade(config, "0002")
        engine = make_engine(empty_database)
        try:
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "INSERT INTO tasks (user_id, title, description, completed, priority,"
                        " due_date, completed_at, created_at, updated_at) VALUES"
                        " ('u1', 'dated', 'd', false, 'high', :due, NULL, :stamp, :stamp),"
                        " ('u1', 'undated', NULL, true, 'low', NULL, :stamp, :stamp, :stamp)"
                    ),
                    {"due": date(2026, 12, 1), "stamp": datetime(2026, 11, 24, tzinfo=UTC)},
                )

            command.upgrade(config, "0004")

            with engine.connect() as connection:
                rows = connection.execute(
                    text(
                        "SELECT title, priority, due_date, due_time, time_zone, remind_at,"
                        " recurrence, recurrence_from, next_occurrence_id, due_minute,"
                        " due_date_missing FROM tasks ORDER BY id"
                    )
                ).all()
                tags = connection.execute(text("SELECT count(*) FROM task_tags")).scalar()
        finally:
            engine.dispose()
        # SQLite answers raw SQL with text dates and integer booleans.
        stored = [(*row[:2], row[2] and str(row[2]), *row[3:10], bool(row[10])) for row in rows]
        assert stored == [
            ("dated", "high", "2026-12-01", None, None, None, None, "due", None, -1, False),
            ("undated", "low", None, None, None, None, None, "due", None, -1, True),
        ]
        assert tags == 0
