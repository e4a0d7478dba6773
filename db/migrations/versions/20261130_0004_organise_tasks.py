"""Tags, due times and time zones, reminders and recurrence.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DUE_MINUTE = (
    "COALESCE(CAST(substr(due_time, 1, 2) AS INTEGER) * 60"
    " + CAST(substr(due_time, 4, 2) AS INTEGER), -1)"
)
DUE_INDEXES = ("ix_tasks_user_due", "ix_tasks_user_due_desc")


def upgrade() -> None:
    for name in DUE_INDEXES:
        op.drop_index(name, table_name="tasks")
    # Plain ALTER TABLE on both engines: existing tasks get no tags, time, zone, reminder or
    # rule, and `recurrence_from` "due". (Batch mode would rebuild the table on SQLite, and
    # its copy chokes on the stored generated columns of revision 0002.)
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column("tasks", sa.Column("due_time", sa.String(5), nullable=True))
    op.add_column("tasks", sa.Column("time_zone", sa.String(64), nullable=True))
    op.add_column("tasks", sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tasks", sa.Column("recurrence", sa.String(200), nullable=True))
    op.add_column(
        "tasks",
        sa.Column(
            "recurrence_from", sa.String(10), nullable=False, server_default=sa.text("'due'")
        ),
    )
    op.add_column("tasks", sa.Column("next_occurrence_id", sa.BigInteger(), nullable=True))
    # SQLite can add only a virtual generated column to a table; it can be indexed all the same.
    op.add_column(
        "tasks",
        sa.Column("due_minute", sa.SmallInteger(), sa.Computed(DUE_MINUTE, persisted=not sqlite)),
    )
    if not sqlite:
        # SQLite cannot add a constraint to a table; the contract's enum guards it there.
        op.create_check_constraint(
            "ck_tasks_recurrence_from", "tasks", "recurrence_from IN ('due', 'completion')"
        )
    op.create_index(
        "ix_tasks_user_due",
        "tasks",
        ["user_id", "due_date_missing", "due_date", "due_minute", "id"],
    )
    op.create_index(
        "ix_tasks_user_due_desc",
        "tasks",
        [
            "user_id",
            "due_date_missing",
            sa.text("due_date DESC"),
            sa.text("due_minute DESC"),
            sa.text("id DESC"),
        ],
    )
    op.create_index("ix_tasks_user_remind", "tasks", ["user_id", "remind_at"])
    op.create_table(
        "task_tags",
        sa.Column(
            "task_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("task_id", "name", name="pk_task_tags"),
    )
    op.create_index("ix_task_tags_user_name_task", "task_tags", ["user_id", "name", "task_id"])


def downgrade() -> None:
    op.drop_index("ix_task_tags_user_name_task", table_name="task_tags")
    op.drop_table("task_tags")
    op.drop_index("ix_tasks_user_remind", table_name="tasks")
    for name in DUE_INDEXES:
        op.drop_index(name, table_name="tasks")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("ck_tasks_recurrence_from", "tasks", type_="check")
    for column in (
        "due_minute",
        "next_occurrence_id",
        "recurrence_from",
        "recurrence",
        "remind_at",
        "time_zone",
        "due_time",
    ):
        op.drop_column("tasks", column)
    op.create_index("ix_tasks_user_due", "tasks", ["user_id", "due_date_missing", "due_date", "id"])
    op.create_index(
        "ix_tasks_user_due_desc",
        "tasks",
        ["user_id", "due_date_missing", sa.text("due_date DESC"), sa.text("id DESC")],
    )
