"""Versions, the change feed (positions, tombstones, per-user state) and idempotency keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PRIORITY_RANK = "CASE priority WHEN 'low' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END"
# The indexes of revisions 0001 and 0002, made again on the rebuilt SQLite table.
SORT_INDEXES: dict[str, list[str | sa.TextClause]] = {
    "ix_tasks_user_id_completed": ["user_id", "completed"],
    "ix_tasks_user_created": ["user_id", "created_at", "id"],
    "ix_tasks_user_updated": ["user_id", "updated_at", "id"],
    "ix_tasks_user_title": ["user_id", "title", "id"],
    "ix_tasks_user_priority": ["user_id", "priority_rank", "id"],
    "ix_tasks_user_due": ["user_id", "due_date_missing", "due_date", "id"],
    "ix_tasks_user_due_desc": [
        "user_id",
        "due_date_missing",
        sa.text("due_date DESC"),
        sa.text("id DESC"),
    ],
}


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("version", sa.BigInteger(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("change_position", sa.BigInteger(), nullable=True))
    # Existing tasks are version 1 and sit in their owner's feed in id order: ids are unique
    # and increasing, so they are valid positions, and each user's counter continues after them.
    op.execute("UPDATE tasks SET change_position = id")
    _create_sync_tables()
    op.execute(
        "INSERT INTO sync_state (user_id, last_position, purged_position) "
        "SELECT user_id, MAX(id), 0 FROM tasks GROUP BY user_id"
    )
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_tasks()
    else:
        # PostgreSQL's sequence never hands a deleted id out again.
        op.alter_column("tasks", "change_position", nullable=False)
        op.alter_column("tasks", "version", server_default=None)
    op.create_index("ix_tasks_user_change", "tasks", ["user_id", "change_position"])


def _rebuild_sqlite_tasks() -> None:
    """Rebuild the table with AUTOINCREMENT, so that SQLite never hands the highest id out
    again after a delete. By hand: Alembic's batch copy also copies the generated columns,
    which SQLite refuses."""
    stored: list[sa.Column[Any]] = [
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.String(1000), nullable=True),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.String(6), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("change_position", sa.BigInteger(), nullable=False),
    ]
    names = ", ".join(column.name for column in stored)
    op.create_table(
        "_tasks_0003",
        *stored,
        sa.Column("priority_rank", sa.SmallInteger(), sa.Computed(PRIORITY_RANK, persisted=True)),
        sa.Column(
            "due_date_missing", sa.Boolean(), sa.Computed("due_date IS NULL", persisted=True)
        ),
        sa.CheckConstraint("priority IN ('low', 'medium', 'high')", name="ck_tasks_priority"),
        sa.CheckConstraint("length(title) BETWEEN 1 AND 200", name="ck_tasks_title_length"),
        sqlite_autoincrement=True,
    )
    op.execute(f"INSERT INTO _tasks_0003 ({names}) SELECT {names} FROM tasks")  # noqa: S608
    op.drop_table("tasks")
    op.rename_table("_tasks_0003", "tasks")
    for name, columns in SORT_INDEXES.items():
        op.create_index(name, "tasks", columns)


def _create_sync_tables() -> None:
    op.create_table(
        "sync_state",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.Column("purged_position", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "task_tombstones",
        sa.Column("id", ID, primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("change_position", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_task_tombstones_user_change", "task_tombstones", ["user_id", "change_position"]
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(32), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("location", sa.String(600), nullable=True),
        sa.Column("etag", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name="pk_idempotency_keys"),
    )
    op.create_index(
        "ix_idempotency_keys_user_created", "idempotency_keys", ["user_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_user_created", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_task_tombstones_user_change", table_name="task_tombstones")
    op.drop_table("task_tombstones")
    op.drop_table("sync_state")
    op.drop_index("ix_tasks_user_change", table_name="tasks")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite has it since 3.35): a batch rebuild would
    # copy the generated columns, which SQLite refuses. The table keeps AUTOINCREMENT.
    op.drop_column("tasks", "change_position")
    op.drop_column("tasks", "version")
