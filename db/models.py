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
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    text,
)
from sqlmodel import Field, SQLModel, col

PRIORITY_RANK = "CASE priority WHEN 'low' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END"
# Minutes after midnight of `due_time` ("HH:MM"), -1 for an all-day task: all-day tasks sort
# before timed ones on the same date, and one plain index serves the whole due-date order.
DUE_MINUTE = (
    "COALESCE(CAST(substr(due_time, 1, 2) AS INTEGER) * 60"
    " + CAST(substr(due_time, 4, 2) AS INTEGER), -1)"
)


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
        Index("ix_tasks_user_due", "user_id", "due_date_missing", "due_date", "due_minute", "id"),
        # `remind_before`: what fires before an instant is a range on this index.
        Index("ix_tasks_user_remind", "user_id", "remind_at"),
        CheckConstraint("priority IN ('low', 'medium', 'high')", name="ck_tasks_priority"),
        CheckConstraint(
            "recurrence_from IN ('due', 'completion')", name="ck_tasks_recurrence_from"
        ),
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
    due_time: str | None = Field(default=None, sa_type=String(5))
    time_zone: str | None = Field(default=None, sa_type=String(64))
    remind_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    recurrence: str | None = Field(default=None, sa_type=String(200))
    recurrence_from: str = Field(
        default="due",
        sa_column=Column(String(10), nullable=False, server_default=text("'due'")),
    )
    # No foreign key: it names the occurrence even after that was deleted, so that a task
    # never creates a second one.
    next_occurrence_id: int | None = Field(default=None, sa_type=BigInteger)
    # Sort keys kept by the database itself, so that plain indexes can serve the sorts.
    priority_rank: int | None = Field(
        default=None, sa_column=Column(SmallInteger, Computed(PRIORITY_RANK, persisted=True))
    )
    due_date_missing: bool | None = Field(
        default=None, sa_column=Column(Boolean, Computed("due_date IS NULL", persisted=True))
    )
    due_minute: int | None = Field(
        default=None, sa_column=Column(SmallInteger, Computed(DUE_MINUTE, persisted=True))
    )


class TaskTag(SQLModel, table=True):
    """A tag on a task, at its position in the task's list. The owner is repeated here so
    that "the user's tasks carrying tag X" is one range of (user_id, name, task_id)."""

    __tablename__ = "task_tags"
    __table_args__ = (
        PrimaryKeyConstraint("task_id", "name", name="pk_task_tags"),
        Index("ix_task_tags_user_name_task", "user_id", "name", "task_id"),
    )

    task_id: int = Field(
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"),
            ForeignKey("tasks.id", ondelete="CASCADE"),
            nullable=False,
        )
    )
    user_id: str = Field(sa_type=String(255), nullable=False)
    name: str = Field(sa_type=String(50), nullable=False)
    position: int = Field(sa_type=SmallInteger, nullable=False)


# Due dates descending with the missing ones still last: a mixed-direction index.
Index(
    "ix_tasks_user_due_desc",
    col(Task.user_id),
    col(Task.due_date_missing),
    col(Task.due_date).desc(),
    col(Task.due_minute).desc(),
    col(Task.id).desc(),
)
