"""Task queries. Each write is one statement filtered by id *and* owner, so a task of
another user is indistinguishable from a missing one and concurrent changes never interleave."""

from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.sql.expression import UnaryExpression
from sqlmodel import Session, col

from db.models import Task

# Plain statements on the table, answered with rows: each change is one statement whose
# RETURNING row is the response, so nothing here needs ORM objects or a unit of work.
TASKS: Table = Task.__table__  # type: ignore[attr-defined]

SORT_COLUMNS: dict[str, Any] = {
    "created": Task.created_at,
    "updated": Task.updated_at,
    "title": Task.title,
    "due_date": Task.due_date,
    "priority": Task.priority_rank,
}
DESCENDING_BY_DEFAULT = {"created", "updated"}
# The fields of the contract's TaskUpdate: only these reach an UPDATE, by name.
UPDATABLE_FIELDS = ("title", "description", "completed", "priority", "due_date")

DEFAULT_MAX_TASKS_PER_USER = 10_000
# Bound per request by the app from MAX_TASKS_PER_USER, like the engine.
max_tasks_per_user: ContextVar[int] = ContextVar(
    "max_tasks_per_user", default=DEFAULT_MAX_TASKS_PER_USER
)


class TaskQuotaExceededError(Exception):
    """The user already has the most tasks allowed; nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the user has {limit} tasks, the most allowed")
        self.limit = limit


def now() -> datetime:
    return datetime.now(UTC)


def to_dict(task: Row[Any]) -> dict[str, Any]:
    """The response body of a task, as the contract's `Task` schema describes it."""
    return {
        "id": task.id,
        "user_id": task.user_id,
        "title": task.title,
        "description": task.description,
        "completed": task.completed,
        "priority": task.priority,
        "due_date": _date(task.due_date),
        "completed_at": _timestamp(task.completed_at),
        "created_at": _timestamp(task.created_at),
        "updated_at": _timestamp(task.updated_at),
    }


def _date(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    # SQLite hands back naive datetimes; everything stored is UTC.
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat()


def _parse_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def create(session: Session, user_id: str, fields: Mapping[str, Any]) -> Row[Any]:
    """Insert the task unless the user is at the quota (`TaskQuotaExceededError`)."""
    return insert_within_quota(session, _new_row(user_id, fields), max_tasks_per_user.get())


def _new_row(user_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    stamp = now()
    completed = bool(fields.get("completed", False))
    return {
        "user_id": user_id,
        "title": fields["title"],
        "description": fields.get("description"),
        "completed": completed,
        "priority": fields.get("priority", "medium"),
        "due_date": _parse_date(fields.get("due_date")),
        "completed_at": stamp if completed else None,
        "created_at": stamp,
        "updated_at": stamp,
    }


def insert_within_quota(session: Session, row: Mapping[str, Any], limit: int) -> Row[Any]:
    """`INSERT ... SELECT ... WHERE (SELECT count(*) ...) < :limit RETURNING ...`: the check
    and the insert are one statement, so no check-then-insert window opens between them.
    (Under READ COMMITTED, creates of one user running at the very same moment each count
    without the other, so the quota can be passed by at most that many.)"""
    values = select(*(literal(value, TASKS.c[name].type) for name, value in row.items()))
    owned = select(func.count()).select_from(TASKS).where(TASKS.c.user_id == row["user_id"])
    statement = (
        insert(TASKS)
        .from_select(list(row), values.where(owned.scalar_subquery() < limit))
        .returning(*TASKS.columns)
    )
    created = session.execute(statement).first()
    if created is None:
        raise TaskQuotaExceededError(limit)
    return created


def get(session: Session, user_id: str, task_id: int) -> Row[Any] | None:
    return session.execute(select(*TASKS.columns).where(*_owned(user_id, task_id))).first()


def list_page(
    session: Session,
    user_id: str,
    *,
    status: str,
    sort: str,
    order: str | None,
    q: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Row[Any]], int]:
    """One page of the user's tasks and the number of tasks matching the filter.

    One statement: the page is an index scan bounded by `limit`, and the total rides
    along as a scalar subquery. Plain rows, not ORM objects: nothing here is changed.
    """
    conditions = _filters(user_id, status, q)
    descending = (order or ("desc" if sort in DESCENDING_BY_DEFAULT else "asc")) == "desc"
    total = (
        select(func.count()).select_from(Task).where(*conditions).correlate(None).scalar_subquery()
    )
    query = (
        select(*TASKS.columns, total.label("total"))
        .where(*conditions)
        .order_by(*_ordering(SORT_COLUMNS[sort], sort, descending))
        .limit(limit)
        .offset(offset)
    )
    rows = list(session.execute(query))
    if rows:
        return rows, int(rows[0].total)
    # An empty page carries no total; only a page past the end needs a second query.
    count = (
        session.scalar(select(func.count()).select_from(Task).where(*conditions)) if offset else 0
    )
    return rows, int(count or 0)


def _filters(user_id: str, status: str, q: str | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [col(Task.user_id) == user_id]
    if status != "all":
        # `= false`, not `IS false`: only the former can use the (user_id, completed) index.
        conditions.append(col(Task.completed) == (status == "completed"))
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(
                col(Task.title).ilike(pattern, escape="\\"),
                col(Task.description).ilike(pattern, escape="\\"),
            )
        )
    return conditions


def _ordering(key: Any, sort: str, descending: bool) -> list[Any]:
    direction: list[UnaryExpression[Any]] = [key.desc() if descending else key.asc()]
    tie = col(Task.id).desc() if descending else col(Task.id).asc()
    if sort == "due_date":
        # Tasks without a due date come last in either order.
        return [col(Task.due_date_missing).asc(), *direction, tie]
    return [*direction, tie]


def update_fields(
    session: Session, user_id: str, task_id: int, changes: Mapping[str, Any]
) -> Row[Any] | None:
    """Apply a partial update (merge-patch semantics) in one statement."""
    values: dict[str, Any] = {name: changes[name] for name in UPDATABLE_FIELDS if name in changes}
    values["updated_at"] = now()
    if "due_date" in changes:
        values["due_date"] = _parse_date(changes["due_date"])
    if "completed" in changes:
        values["completed_at"] = _completed_at_when(
            literal(changes["completed"]), values["updated_at"]
        )
    return _update_returning(session, user_id, task_id, values)


def set_completion(
    session: Session, user_id: str, task_id: int, completed: bool | None
) -> Row[Any] | None:
    """Set `completed`, or flip it when `completed` is None, in one statement."""
    new_state = literal(completed) if completed is not None else ~col(Task.completed)
    stamp = now()
    values = {
        "completed": new_state,
        "completed_at": _completed_at_when(new_state, stamp),
        "updated_at": stamp,
    }
    return _update_returning(session, user_id, task_id, values)


def _completed_at_when(completed: Any, stamp: datetime) -> Any:
    # Stamped on becoming completed, kept while it stays so, cleared on reopening.
    return case((completed, func.coalesce(Task.completed_at, stamp)), else_=None)


def _update_returning(
    session: Session, user_id: str, task_id: int, values: Mapping[str, Any]
) -> Row[Any] | None:
    statement = (
        update(TASKS).where(*_owned(user_id, task_id)).values(**values).returning(*TASKS.columns)
    )
    return session.execute(statement).first()


def delete_owned(session: Session, user_id: str, task_id: int) -> bool:
    statement = delete(TASKS).where(*_owned(user_id, task_id)).returning(TASKS.c.id)
    return session.scalars(statement).first() is not None


def _owned(user_id: str, task_id: int) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return col(Task.id) == task_id, col(Task.user_id) == user_id
