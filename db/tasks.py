"""Task queries. Each write to a task is one statement filtered by id *and* owner, so a task
of another user is indistinguishable from a missing one and concurrent changes never
interleave. Every write runs in a `write_transaction()` and first calls `stamp_change`, the
one place that says "this user's list changed" (docs/decisions/0005)."""

from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Row,
    Table,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.expression import UnaryExpression
from sqlmodel import Session, col

from db.models import SyncState, Task, TaskTombstone

# Plain statements on the table, answered with rows: each change is one statement whose
# RETURNING row is the response, so nothing here needs ORM objects or a unit of work.
TASKS: Table = Task.__table__  # type: ignore[attr-defined]
SYNC: Table = SyncState.__table__  # type: ignore[attr-defined]
TOMBSTONES: Table = TaskTombstone.__table__  # type: ignore[attr-defined]
# The columns of a task as the contract's `Task` describes it, in its order.
TASK_FIELDS = (
    "id",
    "user_id",
    "title",
    "description",
    "completed",
    "priority",
    "due_date",
    "completed_at",
    "created_at",
    "updated_at",
    "version",
)

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
        "version": task.version,
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


def stamp_change(session: Session, user_id: str) -> dict[str, Any]:
    """Record that one of the user's tasks changes in this transaction, and return what the
    changed task must be stamped with: `updated_at`, `version + 1` and its feed position.

    Every write calls this first, once: the upsert takes the next position from the user's
    `sync_state` row and holds that row's lock until commit, so one user's writers commit
    in position order and a feed reader never sees a position filled in behind it."""
    dialect = session.get_bind().dialect.name
    upsert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(SYNC)
    statement = (
        upsert.values(user_id=user_id, last_position=1, purged_position=0)
        .on_conflict_do_update(
            index_elements=[SYNC.c.user_id], set_={"last_position": SYNC.c.last_position + 1}
        )
        .returning(SYNC.c.last_position)
    )
    position = session.execute(statement).scalar_one()
    return {"updated_at": now(), "version": TASKS.c.version + 1, "change_position": position}


def create(session: Session, user_id: str, fields: Mapping[str, Any]) -> Row[Any]:
    """Insert the task unless the user is at the quota (`TaskQuotaExceededError`). The stamp
    takes the user's feed row lock first, so the quota's count sees every create committed
    before this one."""
    stamp = stamp_change(session, user_id)
    row = _new_row(user_id, fields, stamp["updated_at"], stamp["change_position"])
    return insert_within_quota(session, row, max_tasks_per_user.get())


def _new_row(
    user_id: str, fields: Mapping[str, Any], stamp: datetime, position: int
) -> dict[str, Any]:
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
        "version": 1,
        "change_position": position,
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
    session: Session,
    user_id: str,
    task_id: int,
    changes: Mapping[str, Any],
    versions: Sequence[int] | None = None,
) -> Row[Any] | None:
    """Apply a partial update (merge-patch semantics) in one statement; with `versions`,
    only when the task's version is one of them. Only the contract's fields, by name."""
    values: dict[str, Any] = {name: changes[name] for name in UPDATABLE_FIELDS if name in changes}
    values.update(stamp_change(session, user_id))
    if "due_date" in changes:
        values["due_date"] = _parse_date(changes["due_date"])
    if "completed" in changes:
        values["completed_at"] = _completed_at_when(
            literal(changes["completed"]), values["updated_at"]
        )
    return _update_returning(session, user_id, task_id, values, versions)


def set_completion(
    session: Session,
    user_id: str,
    task_id: int,
    completed: bool | None,
    versions: Sequence[int] | None = None,
) -> Row[Any] | None:
    """Set `completed`, or flip it when `completed` is None, in one statement."""
    new_state = literal(completed) if completed is not None else ~col(Task.completed)
    stamp = stamp_change(session, user_id)
    values = {
        **stamp,
        "completed": new_state,
        "completed_at": _completed_at_when(new_state, stamp["updated_at"]),
    }
    return _update_returning(session, user_id, task_id, values, versions)


def _completed_at_when(completed: Any, stamp: datetime) -> Any:
    # Stamped on becoming completed, kept while it stays so, cleared on reopening.
    return case((completed, func.coalesce(Task.completed_at, stamp)), else_=None)


def _update_returning(
    session: Session,
    user_id: str,
    task_id: int,
    values: Mapping[str, Any],
    versions: Sequence[int] | None,
) -> Row[Any] | None:
    statement = (
        update(TASKS)
        .where(*_owned(user_id, task_id, versions))
        .values(**values)
        .returning(*TASKS.columns)
    )
    return session.execute(statement).first()


def delete_owned(
    session: Session,
    user_id: str,
    task_id: int,
    versions: Sequence[int] | None = None,
    retention: timedelta = timedelta(days=30),
) -> bool:
    """Delete the task and leave its tombstone in the feed; clean up expired tombstones."""
    stamp = stamp_change(session, user_id)
    statement = delete(TASKS).where(*_owned(user_id, task_id, versions)).returning(TASKS.c.id)
    if session.scalars(statement).first() is None:
        return False
    _purge_tombstones(session, user_id, stamp["updated_at"] - retention)
    session.execute(
        insert(TOMBSTONES).values(
            id=task_id,
            user_id=user_id,
            deleted_at=stamp["updated_at"],
            change_position=stamp["change_position"],
        )
    )
    return True


def _purge_tombstones(session: Session, user_id: str, cutoff: datetime) -> None:
    """Lazily, on the user's next delete: no job for the operator to run. The highest purged
    position is remembered, so that a cursor before it answers 410 instead of missing it."""
    purged = session.scalars(
        delete(TOMBSTONES)
        .where(TOMBSTONES.c.user_id == user_id, TOMBSTONES.c.deleted_at < cutoff)
        .returning(TOMBSTONES.c.change_position)
    ).all()
    if purged:
        session.execute(
            update(SYNC)
            .where(SYNC.c.user_id == user_id, SYNC.c.purged_position < max(purged))
            .values(purged_position=max(purged))
        )


def changes_after(
    session: Session, user_id: str, position: int, limit: int
) -> tuple[list[Row[Any]], int]:
    """Up to `limit + 1` of the user's changes after `position`, in position order (a task
    in its latest state, or a tombstone), and the highest position whose tombstone is gone.

    The page is one statement, so tasks and tombstones come from one snapshot; each branch
    is a bounded scan of its (user_id, change_position) index. The purged position is read
    after it: a purge that the page might have missed shows there, so it is never missed."""
    live = (
        select(
            TASKS.c.change_position.label("position"),
            literal(False, Boolean).label("deleted"),
            *(TASKS.c[name] for name in TASK_FIELDS),
        )
        .where(TASKS.c.user_id == user_id, TASKS.c.change_position > position)
        .order_by(TASKS.c.change_position)
        .limit(limit + 1)
        .subquery()
    )
    gone = (
        select(
            TOMBSTONES.c.change_position.label("position"),
            literal(True, Boolean).label("deleted"),
            TOMBSTONES.c.id,
            TOMBSTONES.c.user_id,
            # Typed, so that PostgreSQL matches them with the other branch's columns.
            *(cast(null(), TASKS.c[name].type).label(name) for name in TASK_FIELDS[2:]),
        )
        .where(TOMBSTONES.c.user_id == user_id, TOMBSTONES.c.change_position > position)
        .order_by(TOMBSTONES.c.change_position)
        .limit(limit + 1)
        .subquery()
    )
    both = union_all(select(live), select(gone)).subquery()
    page = list(session.execute(select(both).order_by(both.c.position).limit(limit + 1)))
    purged = session.scalar(select(SYNC.c.purged_position).where(SYNC.c.user_id == user_id))
    return page, int(purged or 0)


def _owned(
    user_id: str, task_id: int, versions: Sequence[int] | None = None
) -> list[ColumnElement[bool]]:
    conditions = [col(Task.id) == task_id, col(Task.user_id) == user_id]
    if versions is not None:
        # If-Match: the comparison is part of the write, so it is atomic with it.
        conditions.append(col(Task.version).in_(versions))
    return conditions
