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


class TestSyncRevision:
    def test_0003_upgrades_a_populated_database(self, empty_database: str) -> None:
        config = alembic_config(empty_database)
        command.upgrade(config, "0002")
        engine = make_engine(empty_database)
        try:
            with engine.begin() as connection:
                for user, title in [("ann", "a1"), ("bob", "b1"), ("ann", "a2")]:
                    connection.execute(
                        text(
                            "INSERT INTO tasks (user_id, title, completed, priority, "
                            "created_at, updated_at) VALUES (:u, :t, false, 'low', :now, :now)"
                        ),
                        {"u": user, "t": title, "now": datetime(2026, 11, 1, tzinfo=UTC)},
                    )

            command.upgrade(config, "head")

            with engine.connect() as connection:
                tasks = connection.execute(
                    text("SELECT id, user_id, version, change_position FROM tasks ORDER BY id")
                ).all()
                state: dict[str, int] = dict(
                    connection.execute(text("SELECT user_id, last_position FROM sync_state")).all()
                )
            assert [task.version for task in tasks] == [1, 1, 1]
            assert [task.change_position for task in tasks] == [task.id for task in tasks]
            assert state == {"ann": tasks[2].id, "bob": tasks[1].id}
        finally:
            engine.dispose()

    def test_sqlite_never_reuses_the_id_of_a_deleted_last_task(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'ids.db'}"
        upgrade(url)
        engine = make_engine(url)
        insert = text(
            "INSERT INTO tasks (user_id, title, completed, priority, created_at, updated_at, "
            "version, change_position) VALUES ('u', 't', false, 'low', :now, :now, 1, 1) "
            "RETURNING id"
        )
        now = {"now": datetime(2026, 11, 1, tzinfo=UTC)}
        try:
            with engine.begin() as connection:
                first = connection.execute(insert, now).scalar_one()
                connection.execute(text("DELETE FROM tasks WHERE id = :id"), {"id": first})
                second = connection.execute(insert, now).scalar_one()
            assert second > first
        finally:
            engine.dispose()


class TestUpgradeOfAPopulatedDatabase:
    def test_0004_keeps_every_task_of_0003_and_gives_it_the_new_defaults(
        self, empty_database: str
    ) -> None:
        config = alembic_config(empty_database)
        command.upgrade(config, "0003")
        engine = make_engine(empty_database)
        try:
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "INSERT INTO tasks (user_id, title, description, completed, priority,"
                        " due_date, completed_at, created_at, updated_at, version,"
                        " change_position) VALUES"
                        " ('u1', 'dated', 'd', false, 'high', :due, NULL, :stamp, :stamp, 3, 1),"
                        " ('u1', 'undated', NULL, true, 'low', NULL, :stamp, :stamp, :stamp, 1, 2)"
                    ),
                    {"due": date(2026, 12, 1), "stamp": datetime(2026, 11, 24, tzinfo=UTC)},
                )

            command.upgrade(config, "0004")

            with engine.connect() as connection:
                rows = connection.execute(
                    text(
                        "SELECT title, priority, due_date, due_time, time_zone, remind_at,"
                        " recurrence, recurrence_from, next_occurrence_id, due_minute,"
                        " due_date_missing, version, change_position FROM tasks ORDER BY id"
                    )
                ).all()
                tags = connection.execute(text("SELECT count(*) FROM task_tags")).scalar()
        finally:
            engine.dispose()
        # SQLite answers raw SQL with text dates and integer booleans.
        stored = [
            (*row[:2], row[2] and str(row[2]), *row[3:10], bool(row[10]), *row[11:]) for row in rows
        ]
        assert stored == [
            ("dated", "high", "2026-12-01", None, None, None, None, "due", None, -1, False, 3, 1),
            ("undated", "low", None, None, None, None, None, "due", None, -1, True, 1, 2),
        ]
        assert tags == 0
