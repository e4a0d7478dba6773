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
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
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
    # Sort keys kept by the database itself, so that plain indexes can serve the sorts.
    priority_rank: int | None = Field(
        default=None, sa_column=Column(SmallInteger, Computed(PRIORITY_RANK, persisted=True))
    )
    due_date_missing: bool | None = Field(
        default=None, sa_column=Column(Boolean, Computed("due_date IS NULL", persisted=True))
    )
    # 1 when created, one more on every change; the ETag derives from it.
    version: int = Field(default=1, sa_type=BigInteger, nullable=False)
    # Where the task's latest change sits in its owner's feed (SyncState.last_position).
    change_position: int = Field(sa_type=BigInteger, nullable=False)


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
    col(Task.id).desc(),
)
