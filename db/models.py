"""The tables. The contract (openapi/tasks.yaml) validates input; these
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
    LargeBinary,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
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
        # The change feed: one user's changes in commit order (docs/decisions/0005).
        Index("ix_tasks_user_change", "user_id", "change_position"),
        # AUTOINCREMENT: SQLite would otherwise hand a deleted highest id out again, and a
        # client that saw the tombstone would take the new task for the old one.
        {"sqlite_autoincrement": True},
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
    # 1 when created, one more on every change; the ETag derives from it.
    version: int = Field(default=1, sa_type=BigInteger, nullable=False)
    # Where the task's latest change sits in its owner's feed (SyncState.last_position).
    change_position: int = Field(sa_type=BigInteger, nullable=False)


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


class SyncState(SQLModel, table=True):
    """One row per user: the position of the user's latest change. Every write takes the next
    position with an upsert on this row inside its transaction, so the row lock orders one
    user's writers and positions commit in order (docs/decisions/0005)."""

    __tablename__ = "sync_state"

    user_id: str = Field(sa_type=String(255), primary_key=True)
    last_position: int = Field(sa_type=BigInteger, nullable=False)
    # The highest position of a tombstone already cleaned up: a cursor before it may have
    # missed that deletion and must resync.
    purged_position: int = Field(default=0, sa_type=BigInteger, nullable=False)


class TaskTombstone(SQLModel, table=True):
    """A deleted task, kept TOMBSTONE_RETENTION so that the feed can report the deletion."""

    __tablename__ = "task_tombstones"
    __table_args__ = (Index("ix_task_tombstones_user_change", "user_id", "change_position"),)

    id: int = Field(
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    )
    user_id: str = Field(sa_type=String(255), nullable=False)
    deleted_at: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)
    change_position: int = Field(sa_type=BigInteger, nullable=False)


class IdempotencyKey(SQLModel, table=True):
    """A 2xx answer stored with its Idempotency-Key, in the transaction of the write it
    answers, and replayed for a retry within IDEMPOTENCY_KEY_TTL."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        PrimaryKeyConstraint("user_id", "key", name="pk_idempotency_keys"),
        # Expired keys are deleted per user on the next keyed request.
        Index("ix_idempotency_keys_user_created", "user_id", "created_at"),
    )

    user_id: str = Field(sa_type=String(255))
    key: str = Field(sa_type=String(255))
    # SHA-256 of the method, path and body of the request the key was first used for.
    fingerprint: bytes = Field(sa_type=LargeBinary(32), nullable=False)
    status: int = Field(sa_type=SmallInteger, nullable=False)
    body: str = Field(sa_type=Text, nullable=False)
    location: str | None = Field(default=None, sa_type=String(600))
    etag: str | None = Field(default=None, sa_type=String(40))
    created_at: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)


# Due dates descending with the missing ones still last: a mixed-direction index.
Index(
    "ix_tasks_user_due_desc",
    col(Task.user_id),
    col(Task.due_date_missing),
    col(Task.due_date).desc(),
    col(Task.due_minute).desc(),
    col(Task.id).desc(),
)
