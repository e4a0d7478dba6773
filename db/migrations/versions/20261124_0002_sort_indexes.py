"""Sort keys as generated columns, and an index per sort key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRIORITY_RANK = "CASE priority WHEN 'low' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END"


def upgrade() -> None:
    # Batch mode rebuilds the table on SQLite, which cannot add a stored generated column.
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(
            sa.Column(
                "priority_rank", sa.SmallInteger(), sa.Computed(PRIORITY_RANK, persisted=True)
            )
        )
        batch.add_column(
            sa.Column(
                "due_date_missing", sa.Boolean(), sa.Computed("due_date IS NULL", persisted=True)
            )
        )
        batch.drop_index("ix_tasks_user_id_created_at")
    op.create_index("ix_tasks_user_created", "tasks", ["user_id", "created_at", "id"])
    op.create_index("ix_tasks_user_updated", "tasks", ["user_id", "updated_at", "id"])
    op.create_index("ix_tasks_user_title", "tasks", ["user_id", "title", "id"])
    op.create_index("ix_tasks_user_priority", "tasks", ["user_id", "priority_rank", "id"])
    op.create_index("ix_tasks_user_due", "tasks", ["user_id", "due_date_missing", "due_date", "id"])
    op.create_index(
        "ix_tasks_user_due_desc",
        "tasks",
        ["user_id", "due_date_missing", sa.text("due_date DESC"), sa.text("id DESC")],
    )


def downgrade() -> None:
    for name in (
        "ix_tasks_user_due_desc",
        "ix_tasks_user_due",
        "ix_tasks_user_priority",
        "ix_tasks_user_title",
        "ix_tasks_user_updated",
        "ix_tasks_user_created",
    ):
        op.drop_index(name, table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("due_date_missing")
        batch.drop_column("priority_rank")
        batch.create_index("ix_tasks_user_id_created_at", ["user_id", "created_at"])
