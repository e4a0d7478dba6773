"""Task queries. Each write is filtered by id *and* owner, so a task of another user is
indistinguishable from a missing one. Every write runs in `db.engine.write_transaction()`,
first calls `stamp_change` (or `stamp_tasks`), the one place that says "this user's list
changed" (docs/decisions/0005), and then locks the task's row, so concurrent changes never
interleave (docs/decisions/0007)."""

from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Row,
    Table,
    bindparam,
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

from db.models import SyncState, Task, TaskTag, TaskTombstone
from db.recurrence import (
    InvalidTaskError,
    check_rule,
    check_time_zone,
    next_occurrence,
    parse_instant,
    shift_reminder,
    to_utc,
    zone,
)

# Plain statements on the tables, answered with rows: nothing here needs ORM objects.
TASKS: Table = Task.__table__  # type: ignore[attr-defined]
TAGS: Table = TaskTag.__table__  # type: ignore[attr-defined]
SYNC: Table = SyncState.__table__  # type: ignore[attr-defined]
TOMBSTONES: Table = TaskTombstone.__table__  # type: ignore[attr-defined]
# The columns of a task as the contract's `Task` describes it, in its order (`tags` live in
# their own table).
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
    "due_time",
    "time_zone",
    "remind_at",
    "recurrence",
    "recurrence_from",
    "next_occurrence_id",
)

SORT_COLUMNS: dict[str, Any] = {
    "created": Task.created_at,
    "updated": Task.updated_at,
    "title": Task.title,
    "due_date": Task.due_date,
    "priority": Task.priority_rank,
}
DESCENDING_BY_DEFAULT = {"created", "updated"}
MAX_TAG_LENGTH = 50
# The contract's fields a client sets directly, column for column (tags live in their table):
# only these reach an INSERT or UPDATE, by name.
PLAIN_FIELDS = (
    "title",
    "description",
    "completed",
    "priority",
    "due_date",
    "due_time",
    "time_zone",
    "remind_at",
    "recurrence",
    "recurrence_from",
)

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


def stamp_change(session: Session, user_id: str) -> dict[str, Any]:
    """Record that one of the user's tasks changes in this transaction, and return what the
    changed task must be stamped with: `updated_at`, `version + 1` and its feed position.

    Every write calls this first: the upsert takes the next position from the user's
    `sync_state` row and holds that row's lock until commit, so one user's writers commit
    in position order and a feed reader never sees a position filled in behind it. A write
    that changes several tasks calls it once per task (or `stamp_tasks`), so that each has
    a position of its own."""
    position = _take_positions(session, user_id, 1)
    return {"updated_at": now(), "version": TASKS.c.version + 1, "change_position": position}


def lock_feed(session: Session, user_id: str) -> None:
    """Take the user's `sync_state` row lock without a position: a write that must find its
    tasks before it knows how many positions it needs takes the lock first all the same, so
    every writer locks the feed before any task row and none waits for another in a cycle."""
    _take_positions(session, user_id, 0)


def stamp_tasks(session: Session, user_id: str, task_ids: Sequence[int]) -> None:
    """Stamp tasks changed by a write to another table (their tags): each gets `updated_at`,
    `version + 1` and a feed position of its own, in id order."""
    ids = sorted(set(task_ids))
    if not ids:
        return
    last = _take_positions(session, user_id, len(ids))
    stamp = now()
    statement = (
        update(TASKS)
        .where(col(Task.user_id) == user_id, col(Task.id) == bindparam("task_id"))
        .values(
            updated_at=stamp,
            version=TASKS.c.version + 1,
            change_position=bindparam("position"),
        )
    )
    first = last - len(ids) + 1
    rows = [{"task_id": task_id, "position": first + n} for n, task_id in enumerate(ids)]
    session.connection().execute(statement, rows)


def _take_positions(session: Session, user_id: str, count: int) -> int:
    """Add `count` to the user's feed position, locking the row; the new last position."""
    dialect = session.get_bind().dialect.name
    upsert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(SYNC)
    statement = (
        upsert.values(user_id=user_id, last_position=count, purged_position=0)
        .on_conflict_do_update(
            index_elements=[SYNC.c.user_id],
            set_={"last_position": SYNC.c.last_position + count},
        )
        .returning(SYNC.c.last_position)
    )
    return int(session.execute(statement).scalar_one())


def chunks(ids: Sequence[int], size: int = 10_000) -> Iterator[Sequence[int]]:
    """Ids in slices that stay under SQLite's limit of bound parameters per statement."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# --- reading ---------------------------------------------------------------------------


def to_dict(task: Row[Any], tags: Sequence[str]) -> dict[str, Any]:
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
        "tags": list(tags),
        "due_time": task.due_time,
        "time_zone": task.time_zone,
        "remind_at": _timestamp(task.remind_at),
        "recurrence": task.recurrence,
        "recurrence_from": task.recurrence_from,
        "next_occurrence_id": task.next_occurrence_id,
    }


def bodies(session: Session, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """The response bodies of rows, their tags fetched in one statement."""
    tags = tags_of(session, [row.id for row in rows])
    return [to_dict(row, tags.get(row.id, [])) for row in rows]


def tags_of(session: Session, task_ids: Sequence[int]) -> dict[int, list[str]]:
    if not task_ids:
        return {}
    query = (
        select(TAGS.c.task_id, TAGS.c.name)
        .where(TAGS.c.task_id.in_(task_ids))
        .order_by(TAGS.c.task_id, TAGS.c.position)
    )
    found: dict[int, list[str]] = {}
    for task_id, name in session.execute(query):
        found.setdefault(task_id, []).append(name)
    return found


def _date(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _timestamp(value: datetime | None) -> str | None:
    return _utc(value).isoformat() if value is not None else None


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def get(session: Session, user_id: str, task_id: int) -> dict[str, Any] | None:
    row = session.execute(select(*TASKS.columns).where(*_owned(user_id, task_id))).first()
    return bodies(session, [row])[0] if row else None


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
    **filters: Any,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the user's tasks and the number of tasks matching every filter.

    The page is an index scan bounded by `limit`, and the total rides along as a scalar
    subquery; the page's tags come in a second statement.
    """
    conditions = _filters(user_id, status, q, **filters)
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
        return bodies(session, rows), int(rows[0].total)
    # An empty page carries no total; only a page past the end needs a second query.
    count = (
        session.scalar(select(func.count()).select_from(Task).where(*conditions)) if offset else 0
    )
    return [], int(count or 0)


def _filters(
    user_id: str,
    status: str,
    q: str | None,
    *,
    tag: Sequence[str] | None = None,
    priority: Sequence[str] | None = None,
    due_from: str | None = None,
    due_to: str | None = None,
    remind_before: str | None = None,
) -> list[ColumnElement[bool]]:
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
    if tag:
        conditions.extend(_carrying_all(user_id, {normalise_tag(name) for name in tag}))
    if priority:
        conditions.append(col(Task.priority).in_(sorted(set(priority))))
    if due_from or due_to:
        # Said outright (tasks without a date never match anyway) so that the range is one
        # stretch of the (user_id, due_date_missing, due_date) index.
        conditions.append(col(Task.due_date_missing) == False)  # noqa: E712
    if due_from:
        conditions.append(col(Task.due_date) >= date.fromisoformat(due_from))
    if due_to:
        conditions.append(col(Task.due_date) <= date.fromisoformat(due_to))
    if remind_before:
        conditions.append(col(Task.remind_at) <= _utc_or_bound(parse_instant(remind_before)))
    return conditions


def _utc_or_bound(instant: datetime) -> datetime:
    # An instant beyond the range of UTC datetimes is before or after every stored one.
    try:
        return to_utc(instant)
    except OverflowError:
        bound = datetime.min if instant.year == 1 else datetime.max
        return bound.replace(tzinfo=UTC)


def _carrying_all(user_id: str, names: set[str]) -> list[ColumnElement[bool]]:
    # One semi-join per tag, each a range of the (user_id, name, task_id) index: PostgreSQL
    # estimates these well (a GROUP BY ... HAVING count(*) = n it guessed at 1 row out of
    # 5,000, and chose nested loops); the task has every tag when it passes all of them.
    return [
        col(Task.id).in_(
            select(TAGS.c.task_id).where(TAGS.c.user_id == user_id, TAGS.c.name == name)
        )
        for name in sorted(names)
    ]


def _ordering(key: Any, sort: str, descending: bool) -> list[Any]:
    def way(column: Any) -> UnaryExpression[Any]:
        ordered: UnaryExpression[Any] = column.desc() if descending else column.asc()
        return ordered

    if sort == "due_date":
        # Tasks without a due date come last in either order; on one date, all-day tasks
        # (due_minute -1) come before timed ones.
        return [
            col(Task.due_date_missing).asc(),
            way(key),
            way(col(Task.due_minute)),
            way(col(Task.id)),
        ]
    return [way(key), way(col(Task.id))]


# --- validating ------------------------------------------------------------------------


def normalise_tag(name: str) -> str:
    return name.strip().lower()


def normalise_tags(names: Sequence[str]) -> list[str]:
    normal = [normalise_tag(name) for name in names]
    for name in normal:
        if len(name) > MAX_TAG_LENGTH:
            raise InvalidTaskError(f"tags: {name!r} is longer than {MAX_TAG_LENGTH} characters.")
    if len(set(normal)) != len(normal):
        raise InvalidTaskError("tags: two tags are the same once trimmed and lowercased.")
    return normal


def _columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The contract's writable fields as column values, parsed."""
    values = {name: fields[name] for name in PLAIN_FIELDS if name in fields}
    if "due_date" in values:
        values["due_date"] = date.fromisoformat(values["due_date"]) if values["due_date"] else None
    if values.get("remind_at"):
        try:
            values["remind_at"] = to_utc(parse_instant(values["remind_at"]))
        except OverflowError:
            raise InvalidTaskError("remind_at: it is outside years 1 to 9999 in UTC.") from None
    return values


def _check(task: Mapping[str, Any], rule_changed: bool) -> None:
    """What the schema cannot say about a task as a whole (after a change is merged)."""
    if task.get("due_time") and not task.get("due_date"):
        raise InvalidTaskError("due_time: a due time needs a due_date.")
    check_time_zone(task.get("time_zone"))
    recurrence, due = task.get("recurrence"), task.get("due_date")
    if recurrence:
        if due is None:
            raise InvalidTaskError("recurrence: a recurring task needs a due_date.")
        if rule_changed:
            check_rule(recurrence, due)


# --- writing ---------------------------------------------------------------------------


def create(session: Session, user_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A new task and its tags, unless the user is at the quota (`TaskQuotaExceededError`).
    The stamp takes the user's feed row lock first, so the quota's count sees every create
    committed before this one."""
    values = _columns(fields)
    _check(values, rule_changed=True)
    tags = normalise_tags(fields.get("tags") or [])
    row = _insert(session, user_id, values, tags, quota=max_tasks_per_user.get())
    return to_dict(row, tags)


def _insert(
    session: Session,
    user_id: str,
    values: Mapping[str, Any],
    tags: Sequence[str],
    quota: int | None = None,
) -> Row[Any]:
    """A new task at a feed position of its own, version 1; with `quota`, only while the
    user has fewer tasks."""
    stamp = stamp_change(session, user_id)
    completed = bool(values.get("completed", False))
    new = {
        **values,
        "user_id": user_id,
        "completed": completed,
        "completed_at": stamp["updated_at"] if completed else None,
        "created_at": stamp["updated_at"],
        **stamp,
        "version": 1,
    }
    if quota is not None:
        row = insert_within_quota(session, new, quota)
    else:
        row = session.execute(insert(TASKS).values(new).returning(*TASKS.columns)).one()
    _put_tags(session, user_id, row.id, tags)
    return row


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


def _put_tags(session: Session, user_id: str, task_id: int, tags: Sequence[str]) -> None:
    if tags:
        rows = [
            {"task_id": task_id, "user_id": user_id, "name": name, "position": position}
            for position, name in enumerate(tags)
        ]
        session.execute(insert(TAGS), rows)


def update_fields(
    session: Session,
    user_id: str,
    task_id: int,
    changes: Mapping[str, Any],
    versions: Sequence[int] | None = None,
) -> dict[str, Any] | None:
    """Apply a partial update (merge-patch semantics); with `versions`, only when the task's
    version is one of them. None when nothing was written (no such task, or If-Match failed).

    The feed is stamped first, then the task's row is locked, so the checks see the task the
    change applies to. Becoming completed creates the next occurrence of a recurring task.
    """
    stamp = stamp_change(session, user_id)
    current = _locked(session, user_id, task_id)
    if current is None or (versions is not None and current.version not in versions):
        return None
    values = _columns(changes)
    if "due_date" in values and values["due_date"] is None and "due_time" not in values:
        values["due_time"] = None  # clearing the date clears its time
    merged = {**current._asdict(), **values}
    _check(merged, rule_changed="recurrence" in values or "due_date" in values)
    tags = normalise_tags(changes["tags"]) if "tags" in changes else None
    if "completed" in values:
        completed_at = current.completed_at or stamp["updated_at"]
        values["completed_at"] = completed_at if values["completed"] else None
    row = _update_returning(session, user_id, task_id, {**values, **stamp})
    assert row is not None  # the row is locked by this transaction
    if tags is not None:
        session.execute(delete(TAGS).where(TAGS.c.task_id == task_id))
        _put_tags(session, user_id, task_id, tags)
    else:
        tags = tags_of(session, [task_id]).get(task_id, [])
    if values.get("completed") and not current.completed:
        row = _create_next_occurrence(session, row, tags)
    return to_dict(row, tags)


def set_completion(
    session: Session,
    user_id: str,
    task_id: int,
    completed: bool | None,
    versions: Sequence[int] | None = None,
) -> dict[str, Any] | None:
    """Set `completed`, or flip it when `completed` is None."""
    if completed is None:
        lock_feed(session, user_id)
        current = _locked(session, user_id, task_id)
        if current is None:
            return None
        completed = not current.completed
    return update_fields(session, user_id, task_id, {"completed": completed}, versions)


def _create_next_occurrence(session: Session, task: Row[Any], tags: Sequence[str]) -> Row[Any]:
    """The recurring task just completed creates its next occurrence, once in its life: a
    new task (version 1, a feed position after the completed task's)."""
    if not task.recurrence or task.due_date is None or task.next_occurrence_id is not None:
        return task
    tz = zone(task.time_zone)
    today = now()
    completed_on = _utc(task.completed_at or today).astimezone(tz).date()
    following = next_occurrence(
        task.recurrence,
        task.recurrence_from,
        task.due_date,
        completed_on,
        today=today.astimezone(tz).date(),
    )
    if following is None:
        return task
    days = (following.due_date - task.due_date).days
    values = {
        "title": task.title,
        "description": task.description,
        "priority": task.priority,
        "due_date": following.due_date,
        "due_time": task.due_time,
        "time_zone": task.time_zone,
        "remind_at": shift_reminder(task.remind_at, days, task.time_zone),
        "recurrence": following.recurrence,
        "recurrence_from": task.recurrence_from,
    }
    occurrence = _insert(session, task.user_id, values, tags)
    # Part of the completion this transaction already stamped: no second version.
    updated = _update_returning(
        session, task.user_id, task.id, {"next_occurrence_id": occurrence.id}
    )
    assert updated is not None  # the row is locked by this transaction
    return updated


def _locked(session: Session, user_id: str, task_id: int) -> Row[Any] | None:
    query = select(*TASKS.columns).where(*_owned(user_id, task_id)).with_for_update()
    return session.execute(query).first()


def _update_returning(
    session: Session, user_id: str, task_id: int, values: Mapping[str, Any]
) -> Row[Any] | None:
    statement = (
        update(TASKS).where(*_owned(user_id, task_id)).values(**values).returning(*TASKS.columns)
    )
    return session.execute(statement).first()


def delete_owned(
    session: Session,
    user_id: str,
    task_id: int,
    versions: Sequence[int] | None = None,
    retention: timedelta = timedelta(days=30),
) -> bool:
    """Delete the task and its tags and leave its tombstone in the feed; clean up expired
    tombstones. The task first, as every writer locks a task before its tags; PostgreSQL's
    cascade then leaves no tags for the second statement, which is there for SQLite (it
    enforces no foreign keys by default)."""
    stamp = stamp_change(session, user_id)
    statement = delete(TASKS).where(*_owned(user_id, task_id, versions)).returning(TASKS.c.id)
    if session.scalars(statement).first() is None:
        return False
    session.execute(delete(TAGS).where(TAGS.c.task_id == task_id, TAGS.c.user_id == user_id))
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
