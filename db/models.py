"""The tasks table. The contract (openapi/tasks.yaml) validates input; these
constraints are the backstop for anything that reaches the database another way."""

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    Index,
    Integer,
    SmallInteger,
    String,
)
from sqlmodel import Field, SQLModel, col

PRIORITY_RANK = "CASE priority WHEN 'low' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END"


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        # The count of a filtered list; every sort key below has an index that
        # serves `WHERE user_id = ? ORDER BY key, id LIMIT n` as a bounded scan.
        Index("ix_tasks_user_id_completed", "user_id", "completed"),
        Index("ix_tasks_user_created", "user_id", "created_at", "id"),
        Index("ix_tasks_user_updated", "user_id", "updated_at", "id"),
        Index("ix_tasks_user_title", "user_id", "title", "id"),
        Index("ix_tasks_user_priority", "user_id", "priority_rank", "id"),
        Index("ix_tasks_user_due", "user_id", "due_date_missing", "due_date", "id"),
        CheckConstraint("priority IN ('low', 'medium', 'high')", name="ck_tasks_priority"),
        CheckConstraint("length(title) BETWEEN 1 AND 200", name="ck_tasks_title_length"),
    )

    # SQLite only auto-increments an INTEGER PRIMARY KEY (which is 64-bit there).
    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    user_id: str = Field(sa_type=String(255), nullable=False)
    title: str = Field(sa_type=String(200), nullable=False)
    description: str | None = Field(default=None, sa_type=String(1000))
    completed: bool = Field(default=False, nullable=False)
    priority: str = Field(default="medium", sa_type=String(6), nullable=False)
    due_date: date | None = None
    completed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)
    updated_at: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)
    # Sort keys kept by the database itself, so that plain indexes can serve the sorts.
    priority_rank: int | None = Field(
        default=None, sa_column=Column(SmallInteger, Computed(PRIORITY_RANK, persisted=True))
    )
    due_date_missing: bool | None = Field(
        default=None, sa_column=Column(Boolean, Computed("due_date IS NULL", persisted=True))
    )


# Due dates descending with the missing ones still last: a mixed-direction index.
Index(
    "ix_tasks_user_due_desc",
    col(Task.user_id),
    col(Task.due_date_missing),
    col(Task.due_date).desc(),
    col(Task.id).desc(),
)
