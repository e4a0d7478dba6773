"""The tasks table. The contract (openapi/tasks.yaml) validates input; these
constraints are the backstop for anything that reaches the database another way."""

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, Index, Integer, String
from sqlmodel import Field, SQLModel

PRIORITIES = ("low", "medium", "high")


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_user_id_completed", "user_id", "completed"),
        Index("ix_tasks_user_id_created_at", "user_id", "created_at"),
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
