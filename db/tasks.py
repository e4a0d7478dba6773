"""Task queries. Each write is filtered by id *and* owner, so a task of another user is
indistinguishable from a missing one. Every write runs in `db.engine.write_transaction()`
and first calls `stamp_change` (or `stamp_tasks`), the one place that says "this user's list
changed" (docs/decisions/0005); that takes the user's feed row lock, so one user's changes
never interleave (docs/decisions/0007).

Every statement is built once, with bound parameters, and executed on a `Connection`:
building a statement and running it through an ORM session cost more CPU than the rest of
a request's database work together (docs/performance.md)."""

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Any, Literal, NamedTuple

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Connection,
    Insert,
    Row,
    Select,
    Table,
    Text,
    Update,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    not_,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import ReturningDelete
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

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
    "created": TASKS.c.created_at,
    "updated": TASKS.c.updated_at,
    "title": TASKS.c.title,
    "due_date": TASKS.c.due_date,
    "priority": TASKS.c.priority_rank,
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
# What a new task holds for a field its create leaves out: the model's defaults.
FIELD_DEFAULTS = {name: Task.model_fields[name].default for name in PLAIN_FIELDS}
# Every column an INSERT writes; the rest are the id and the generated sort keys.
INSERTED = (
    *PLAIN_FIELDS,
    "user_id",
    "completed_at",
    "created_at",
    "updated_at",
    "version",
    "change_position",
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


# --- a task's tags as one column of its row ---------------------------------------------


class TagList(TypeDecorator[list[str]]):
    """The tag names `tag_names` selects: a list from PostgreSQL's array, JSON from SQLite."""

    impl = Text
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> list[str]:
        if value is None:
            return []
        names: list[str] = json.loads(value) if isinstance(value, str) else list(value)
        return names


class tag_names(FunctionElement[list[str]]):  # noqa: N801 (SQL functions are lower case)
    """The names of a task's tags in their order: a correlated subquery, so the task and its
    tags come back in one statement (a second statement per read cost a round trip)."""

    type = TagList()
    inherit_cache = True
    name = "tag_names"


def _tags_of_task(element: tag_names) -> str:
    (task_id,) = element.clauses
    # Qualified, so that it means the outer row's id even inside RETURNING.
    return f"task_tags.task_id = {task_id.table.name}.{task_id.name}"


# Table and column names of the model only, never a value: nothing a client sends.
_TAG_ARRAY = "ARRAY(SELECT task_tags.name FROM task_tags WHERE {} ORDER BY task_tags.position)"
# SQLite 3.40 has no ORDER BY inside an aggregate; it aggregates in the subquery's order.
_TAG_JSON = (
    "(SELECT json_group_array(name) FROM"
    " (SELECT task_tags.name AS name FROM task_tags WHERE {} ORDER BY task_tags.position))"
)


@compiles(tag_names, "postgresql")
def _tag_array(element: tag_names, _compiler: SQLCompiler, **_kw: Any) -> str:
    return _TAG_ARRAY.format(_tags_of_task(element))


@compiles(tag_names, "sqlite")
def _tag_json(element: tag_names, _compiler: SQLCompiler, **_kw: Any) -> str:
    return _TAG_JSON.format(_tags_of_task(element))


TASK_ROW = (*TASKS.columns, tag_names(TASKS.c.id).label("tags"))


# --- the feed position ------------------------------------------------------------------


def stamp_change(connection: Connection, user_id: str) -> dict[str, Any]:
    """Record that one of the user's tasks changes in this transaction, and return what the
    changed task must be stamped with: `updated_at` and its feed position (every UPDATE of
    a task adds one to its `version` itself).

    Every write calls this first: the upsert takes the next position from the user's
    `sync_state` row and holds that row's lock until commit, so one user's writers commit
    in position order and a feed reader never sees a position filled in behind it. A write
    that changes several tasks calls it once per task (or `stamp_tasks`), so that each has
    a position of its own."""
    position = _take_positions(connection, user_id, 1)
    return {"updated_at": now(), "change_position": position}


def lock_feed(connection: Connection, user_id: str) -> None:
    """Take the user's `sync_state` row lock without a position: a write that must find its
    tasks before it knows how many positions it needs takes the lock first all the same, so
    every writer locks the feed before any task row and none waits for another in a cycle."""
    _take_positions(connection, user_id, 0)


_STAMP_TASK = (
    update(TASKS)
    .where(TASKS.c.user_id == bindparam("owner"), TASKS.c.id == bindparam("task"))
    .values(
        updated_at=bindparam("stamped_at"),
        version=TASKS.c.version + 1,
        change_position=bindparam("position"),
    )
)


def stamp_tasks(connection: Connection, user_id: str, task_ids: Sequence[int]) -> None:
    """Stamp tasks changed by a write to another table (their tags): each gets `updated_at`,
    `version + 1` and a feed position of its own, in id order."""
    ids = sorted(set(task_ids))
    if not ids:
        return
    last = _take_positions(connection, user_id, len(ids))
    stamp = now()
    first = last - len(ids) + 1
    rows = [
        {"owner": user_id, "task": task_id, "stamped_at": stamp, "position": first + n}
        for n, task_id in enumerate(ids)
    ]
    connection.execute(_STAMP_TASK, rows)


@functools.cache
def _position_upsert(dialect: str) -> Insert:
    count = bindparam("count", type_=BigInteger)
    upsert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(SYNC)
    statement: Insert = (
        upsert.values(user_id=bindparam("owner"), last_position=count, purged_position=0)
        .on_conflict_do_update(
            index_elements=[SYNC.c.user_id], set_={"last_position": SYNC.c.last_position + count}
        )
        .returning(SYNC.c.last_position)
    )
    return statement


def _take_positions(connection: Connection, user_id: str, count: int) -> int:
    """Add `count` to the user's feed position, locking the row; the new last position."""
    statement = _position_upsert(connection.dialect.name)
    return int(connection.execute(statement, {"owner": user_id, "count": count}).scalar_one())


def chunks(ids: Sequence[int], size: int = 10_000) -> Iterator[Sequence[int]]:
    """Ids in slices that stay under SQLite's limit of bound parameters per statement."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# --- reading ---------------------------------------------------------------------------


# A task's row starts with the table's columns, in the table's order, in every statement
# here; reading them by position is a twentieth of the cost of reading 17 by name.
_CONTRACT_VALUES = itemgetter(*(TASKS.columns.keys().index(name) for name in TASK_FIELDS))


def to_dict(task: Row[Any], tags: Sequence[str]) -> dict[str, Any]:
    """The response body of a task, as the contract's `Task` schema describes it."""
    (
        task_id,
        user_id,
        title,
        description,
        completed,
        priority,
        due_date,
        completed_at,
        created_at,
        updated_at,
        version,
        due_time,
        time_zone,
        remind_at,
        recurrence,
        recurrence_from,
        next_occurrence_id,
    ) = _CONTRACT_VALUES(task)
    return {
        "id": task_id,
        "user_id": user_id,
        "title": title,
        "description": description,
        "completed": completed,
        "priority": priority,
        "due_date": _date(due_date),
        "completed_at": _timestamp(completed_at),
        "created_at": _timestamp(created_at),
        "updated_at": _timestamp(updated_at),
        "version": version,
        "tags": list(tags),
        "due_time": due_time,
        "time_zone": time_zone,
        "remind_at": _timestamp(remind_at),
        "recurrence": recurrence,
        "recurrence_from": recurrence_from,
        "next_occurrence_id": next_occurrence_id,
    }


def bodies(connection: Connection, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """The response bodies of rows without their tags, the tags fetched in one statement."""
    tags = tags_of(connection, [row.id for row in rows])
    return [to_dict(row, tags.get(row.id, [])) for row in rows]


_TAGS_OF = (
    select(TAGS.c.task_id, TAGS.c.name)
    .where(TAGS.c.task_id.in_(bindparam("tasks", expanding=True)))
    .order_by(TAGS.c.task_id, TAGS.c.position)
)


def tags_of(connection: Connection, task_ids: Sequence[int]) -> dict[int, list[str]]:
    if not task_ids:
        return {}
    found: dict[int, list[str]] = {}
    for task_id, name in connection.execute(_TAGS_OF, {"tasks": list(task_ids)}):
        found.setdefault(task_id, []).append(name)
    return found


def _date(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _timestamp(value: datetime | None) -> str | None:
    return _utc(value).isoformat() if value is not None else None


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC (and psycopg2 says so).
    if value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _owned(if_match: bool = False) -> ColumnElement[bool]:
    """The task named by `:task`, if `:owner` owns it; with `if_match`, only while its
    version is one of `:versions` (If-Match: the comparison is part of the statement, so it
    is atomic with the write)."""
    owned = and_(TASKS.c.id == bindparam("task"), TASKS.c.user_id == bindparam("owner"))
    if if_match:
        return and_(owned, TASKS.c.version.in_(bindparam("versions", expanding=True)))
    return owned


def _where_owned(
    user_id: str, task_id: int, versions: Sequence[int] | None = None
) -> dict[str, Any]:
    """The parameters of `_owned(versions is not None)`."""
    parameters: dict[str, Any] = {"task": task_id, "owner": user_id}
    if versions is not None:
        parameters["versions"] = list(versions)
    return parameters


_GET = select(*TASK_ROW).where(_owned())


def get(connection: Connection, user_id: str, task_id: int) -> dict[str, Any] | None:
    row = connection.execute(_GET, _where_owned(user_id, task_id)).first()
    return to_dict(row, row.tags) if row else None


class ListShape(NamedTuple):
    """What a list request's statement depends on; the values are its parameters."""

    status: str
    sort: str
    descending: bool
    searching: bool
    tag_count: int
    by_priority: bool
    due_from: bool
    due_to: bool
    remind_before: bool


def list_page(
    connection: Connection,
    user_id: str,
    *,
    status: str,
    sort: str,
    order: str | None,
    q: str | None,
    limit: int,
    offset: int,
    tag: Sequence[str] | None = None,
    priority: Sequence[str] | None = None,
    due_from: str | None = None,
    due_to: str | None = None,
    remind_before: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the user's tasks and the number of tasks matching every filter.

    The page is an index scan bounded by `limit`; the total rides along as a scalar
    subquery, and each task's tags as a correlated one.
    """
    names = sorted({normalise_tag(name) for name in tag or ()})
    shape = ListShape(
        status=status,
        sort=sort,
        descending=(order or ("desc" if sort in DESCENDING_BY_DEFAULT else "asc")) == "desc",
        searching=bool(q),
        tag_count=len(names),
        by_priority=bool(priority),
        due_from=bool(due_from),
        due_to=bool(due_to),
        remind_before=bool(remind_before),
    )
    parameters: dict[str, Any] = {"owner": user_id, "limit": limit, "offset": offset}
    parameters.update({f"tag_{n}": name for n, name in enumerate(names)})
    if q:
        parameters["pattern"] = (
            "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
    if priority:
        parameters["priorities"] = sorted(set(priority))
    if due_from:
        parameters["due_from"] = date.fromisoformat(due_from)
    if due_to:
        parameters["due_to"] = date.fromisoformat(due_to)
    if remind_before:
        parameters["remind_before"] = _utc_or_bound(parse_instant(remind_before))
    page, count = _list_statements(shape)
    rows = connection.execute(page, parameters).all()
    if rows:
        return [to_dict(row, row.tags) for row in rows], int(rows[0].total)
    # An empty page carries no total; only a page past the end needs a second query.
    return [], int(connection.scalar(count, parameters) or 0) if offset else 0


@functools.lru_cache(maxsize=256)
def _list_statements(shape: ListShape) -> tuple[Select[Any], Select[Any]]:
    """The page (with the total) and the count alone, for one shape of list request."""
    conditions = _filters(shape)
    total = (
        select(func.count()).select_from(TASKS).where(*conditions).correlate(None).scalar_subquery()
    )
    page = (
        select(*TASK_ROW, total.label("total"))
        .where(*conditions)
        .order_by(*_ordering(SORT_COLUMNS[shape.sort], shape.sort, shape.descending))
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    return page, select(func.count()).select_from(TASKS).where(*conditions)


def _filters(shape: ListShape) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [TASKS.c.user_id == bindparam("owner")]
    if shape.status != "all":
        # `= false`, not `IS false`: only the former can use the (user_id, completed) index.
        conditions.append(TASKS.c.completed == (shape.status == "completed"))
    if shape.searching:
        pattern = bindparam("pattern", type_=TASKS.c.title.type)
        conditions.append(
            or_(
                TASKS.c.title.ilike(pattern, escape="\\"),
                TASKS.c.description.ilike(pattern, escape="\\"),
            )
        )
    conditions.extend(_carrying_all(shape.tag_count))
    if shape.by_priority:
        conditions.append(TASKS.c.priority.in_(bindparam("priorities", expanding=True)))
    if shape.due_from or shape.due_to:
        # Said outright (tasks without a date never match anyway) so that the range is one
        # stretch of the (user_id, due_date_missing, due_date) index.
        conditions.append(TASKS.c.due_date_missing == False)  # noqa: E712
    if shape.due_from:
        conditions.append(TASKS.c.due_date >= bindparam("due_from", type_=TASKS.c.due_date.type))
    if shape.due_to:
        conditions.append(TASKS.c.due_date <= bindparam("due_to", type_=TASKS.c.due_date.type))
    if shape.remind_before:
        remind = bindparam("remind_before", type_=TASKS.c.remind_at.type)
        conditions.append(TASKS.c.remind_at <= remind)
    return conditions


def _utc_or_bound(instant: datetime) -> datetime:
    # An instant beyond the range of UTC datetimes is before or after every stored one.
    try:
        return to_utc(instant)
    except OverflowError:
        bound = datetime.min if instant.year == 1 else datetime.max
        return bound.replace(tzinfo=UTC)


def _carrying_all(count: int) -> list[ColumnElement[bool]]:
    # One semi-join per tag, each a range of the (user_id, name, task_id) index: PostgreSQL
    # estimates these well (a GROUP BY ... HAVING count(*) = n it guessed at 1 row out of
    # 5,000, and chose nested loops); the task has every tag when it passes all of them.
    return [
        TASKS.c.id.in_(
            select(TAGS.c.task_id).where(
                TAGS.c.user_id == bindparam("owner"), TAGS.c.name == bindparam(f"tag_{n}")
            )
        )
        for n in range(count)
    ]


def _ordering(key: Any, sort: str, descending: bool) -> list[Any]:
    def way(column: Any) -> UnaryExpression[Any]:
        ordered: UnaryExpression[Any] = column.desc() if descending else column.asc()
        return ordered

    if sort == "due_date":
        # Tasks without a due date come last in either order; on one date, all-day tasks
        # (due_minute -1) come before timed ones.
        return [
            TASKS.c.due_date_missing.asc(),
            way(key),
            way(TASKS.c.due_minute),
            way(TASKS.c.id),
        ]
    return [way(key), way(TASKS.c.id)]


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


def create(connection: Connection, user_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A new task and its tags, unless the user is at the quota (`TaskQuotaExceededError`).
    The stamp takes the user's feed row lock first, so the quota's count sees every create
    committed before this one."""
    values = _columns(fields)
    _check(values, rule_changed=True)
    tags = normalise_tags(fields.get("tags") or [])
    row = _insert(connection, user_id, values, tags, quota=max_tasks_per_user.get())
    return to_dict(row, tags)


@functools.cache
def _insert_statement(within_quota: bool) -> Insert:
    """`INSERT ... SELECT :new_... [WHERE (SELECT count(*) ...) < :quota] RETURNING ...`:
    with the quota, the check and the insert are one statement, so no check-then-insert
    window opens between them."""
    new = {name: bindparam(f"new_{name}", type_=TASKS.c[name].type) for name in INSERTED}
    values = select(*new.values())
    if within_quota:
        owned = select(func.count()).select_from(TASKS).where(TASKS.c.user_id == new["user_id"])
        values = values.where(owned.scalar_subquery() < bindparam("quota"))
    return insert(TASKS).from_select(list(INSERTED), values).returning(*TASKS.columns)


def _insert(
    connection: Connection,
    user_id: str,
    values: Mapping[str, Any],
    tags: Sequence[str],
    quota: int | None = None,
) -> Row[Any]:
    """A new task at a feed position of its own, version 1; with `quota`, only while the
    user has fewer tasks."""
    stamp = stamp_change(connection, user_id)
    completed = bool(values.get("completed", False))
    new = {
        **FIELD_DEFAULTS,
        **values,
        "user_id": user_id,
        "completed": completed,
        "completed_at": stamp["updated_at"] if completed else None,
        "created_at": stamp["updated_at"],
        **stamp,
        "version": 1,
    }
    parameters = {f"new_{name}": new[name] for name in INSERTED}
    if quota is not None:
        parameters["quota"] = quota
    row = connection.execute(_insert_statement(quota is not None), parameters).first()
    if row is None:
        assert quota is not None  # only the quota's condition leaves the row out
        raise TaskQuotaExceededError(quota)
    _put_tags(connection, user_id, row.id, tags)
    return row


def _put_tags(connection: Connection, user_id: str, task_id: int, tags: Sequence[str]) -> None:
    if tags:
        rows = [
            {"task_id": task_id, "user_id": user_id, "name": name, "position": position}
            for position, name in enumerate(tags)
        ]
        connection.execute(insert(TAGS), rows)


# What an UPDATE of a task sets besides the columns its parameters name (`_update_statement`).
UpdateKind = Literal["fields", "completion", "toggle"]
_COMPLETING = bindparam("completing", type_=Boolean)
_STAMPED_AT = bindparam("now", type_=TASKS.c.completed_at.type)


@functools.cache
def _update_statement(how: UpdateKind, if_match: bool) -> Update:
    """`UPDATE tasks SET <the parameters' columns>, version = version + 1 WHERE <owned>
    RETURNING <the task and its tags>`. `how` is "fields" (the columns named by the
    parameters), "completion" (and `completed_at` follows `:completing`: kept when it was
    already completed, now when it becomes so) or "toggle" (`completed` flips)."""
    extra: dict[str, Any] = {}
    if how == "completion":
        extra["completed_at"] = case(
            (_COMPLETING, func.coalesce(TASKS.c.completed_at, _STAMPED_AT)), else_=null()
        )
    elif how == "toggle":
        extra["completed"] = not_(TASKS.c.completed)
        extra["completed_at"] = case((TASKS.c.completed, null()), else_=_STAMPED_AT)
    return (
        update(TASKS)
        .where(_owned(if_match))
        .values(version=TASKS.c.version + 1, **extra)
        .returning(*TASK_ROW)
    )


def update_fields(
    connection: Connection,
    user_id: str,
    task_id: int,
    changes: Mapping[str, Any],
    versions: Sequence[int] | None = None,
) -> dict[str, Any] | None:
    """Apply a partial update (merge-patch semantics); with `versions`, only when the task's
    version is one of them. None when nothing was written (no such task, or If-Match failed).

    The task is changed first and checked as a whole afterwards: a change that leaves it
    invalid raises, and the transaction takes the change back. Becoming completed creates
    the next occurrence of a recurring task."""
    values = _columns(changes)
    tags = normalise_tags(changes["tags"]) if "tags" in changes else None
    if "due_date" in values and values["due_date"] is None and "due_time" not in values:
        values["due_time"] = None  # clearing the date clears its time
    how: UpdateKind = "completion" if "completed" in values else "fields"
    return _update(connection, user_id, task_id, values, versions, how=how, tags=tags)


def set_completion(
    connection: Connection,
    user_id: str,
    task_id: int,
    completed: bool | None,
    versions: Sequence[int] | None = None,
) -> dict[str, Any] | None:
    """Set `completed`, or flip it when `completed` is None."""
    if completed is not None:
        return update_fields(connection, user_id, task_id, {"completed": completed}, versions)
    return _update(connection, user_id, task_id, {}, versions, how="toggle", tags=None)


def _update(
    connection: Connection,
    user_id: str,
    task_id: int,
    values: dict[str, Any],
    versions: Sequence[int] | None,
    *,
    how: UpdateKind,
    tags: list[str] | None,
) -> dict[str, Any] | None:
    stamp = stamp_change(connection, user_id)
    parameters = {**values, **stamp, **_where_owned(user_id, task_id, versions)}
    if how != "fields":
        parameters["now"] = stamp["updated_at"]
        parameters["completing"] = values.get("completed")
    statement = _update_statement(how, if_match=versions is not None)
    row = connection.execute(statement, parameters).first()
    if row is None:
        return None
    _check(dict(row._mapping), rule_changed="recurrence" in values or "due_date" in values)
    if tags is not None:
        connection.execute(_DELETE_TAGS, {"task": task_id, "owner": user_id})
        _put_tags(connection, user_id, task_id, tags)
    else:
        tags = row.tags
    if _just_completed(row, stamp["updated_at"]):
        row = _create_next_occurrence(connection, row, tags)
    return to_dict(row, tags)


def _just_completed(task: Row[Any], stamped_at: datetime) -> bool:
    """Whether this change completed the task: a completion keeps the `completed_at` of a
    task that was already completed, and stamps the change's own time on one that was not."""
    return bool(task.completed) and _utc(task.completed_at) == stamped_at


_SET_NEXT_OCCURRENCE = (
    update(TASKS)
    .where(_owned())
    .values(next_occurrence_id=bindparam("occurrence"))
    .returning(*TASK_ROW)
)


def _create_next_occurrence(
    connection: Connection, task: Row[Any], tags: Sequence[str]
) -> Row[Any]:
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
    occurrence = _insert(connection, task.user_id, values, tags)
    # Part of the completion this transaction already stamped: no second version.
    parameters = {**_where_owned(task.user_id, task.id), "occurrence": occurrence.id}
    updated: Row[Any] = connection.execute(_SET_NEXT_OCCURRENCE, parameters).one()
    return updated


_DELETE_TAGS = delete(TAGS).where(
    TAGS.c.task_id == bindparam("task"), TAGS.c.user_id == bindparam("owner")
)
_PURGE_TOMBSTONES = (
    delete(TOMBSTONES)
    .where(
        TOMBSTONES.c.user_id == bindparam("owner"),
        TOMBSTONES.c.deleted_at < bindparam("cutoff"),
    )
    .returning(TOMBSTONES.c.change_position)
)
_RAISE_PURGED = (
    update(SYNC)
    .where(SYNC.c.user_id == bindparam("owner"), SYNC.c.purged_position < bindparam("purged"))
    .values(purged_position=bindparam("purged"))
)
_ADD_TOMBSTONE = insert(TOMBSTONES).values(
    id=bindparam("task"),
    user_id=bindparam("owner"),
    deleted_at=bindparam("at"),
    change_position=bindparam("position"),
)


@functools.cache
def _delete_statement(if_match: bool) -> ReturningDelete[Any]:
    return delete(TASKS).where(_owned(if_match)).returning(TASKS.c.id)


def delete_owned(
    connection: Connection,
    user_id: str,
    task_id: int,
    versions: Sequence[int] | None = None,
    retention: timedelta = timedelta(days=30),
) -> bool:
    """Delete the task and its tags and leave its tombstone in the feed; clean up expired
    tombstones. The task first, as every writer locks a task before its tags; PostgreSQL's
    cascade then leaves no tags for the second statement, which is there for SQLite (it
    enforces no foreign keys by default)."""
    stamp = stamp_change(connection, user_id)
    owned = _where_owned(user_id, task_id, versions)
    if connection.execute(_delete_statement(versions is not None), owned).first() is None:
        return False
    connection.execute(_DELETE_TAGS, {"task": task_id, "owner": user_id})
    _purge_tombstones(connection, user_id, stamp["updated_at"] - retention)
    tombstone = {
        "task": task_id,
        "owner": user_id,
        "at": stamp["updated_at"],
        "position": stamp["change_position"],
    }
    connection.execute(_ADD_TOMBSTONE, tombstone)
    return True


def _purge_tombstones(connection: Connection, user_id: str, cutoff: datetime) -> None:
    """Lazily, on the user's next delete: no job for the operator to run. The highest purged
    position is remembered, so that a cursor before it answers 410 instead of missing it."""
    purged = connection.execute(_PURGE_TOMBSTONES, {"owner": user_id, "cutoff": cutoff})
    positions = list(purged.scalars())
    if positions:
        connection.execute(_RAISE_PURGED, {"owner": user_id, "purged": max(positions)})


def _changes_statement() -> Select[Any]:
    live = (
        select(
            *TASKS.columns,
            TASKS.c.change_position.label("position"),
            literal(False, Boolean).label("deleted"),
        )
        .where(TASKS.c.user_id == bindparam("owner"), TASKS.c.change_position > bindparam("after"))
        .order_by(TASKS.c.change_position)
        .limit(bindparam("limit"))
        .subquery()
    )
    gone = (
        select(
            TOMBSTONES.c.id,
            TOMBSTONES.c.user_id,
            # Typed, so that PostgreSQL matches them with the other branch's columns.
            *(cast(null(), column.type).label(column.name) for column in TASKS.columns[2:]),
            TOMBSTONES.c.change_position.label("position"),
            literal(True, Boolean).label("deleted"),
        )
        .where(
            TOMBSTONES.c.user_id == bindparam("owner"),
            TOMBSTONES.c.change_position > bindparam("after"),
        )
        .order_by(TOMBSTONES.c.change_position)
        .limit(bindparam("limit"))
        .subquery()
    )
    both = union_all(select(live), select(gone)).subquery()
    return select(both).order_by(both.c.position).limit(bindparam("limit"))


_CHANGES = _changes_statement()
_PURGED_POSITION = select(SYNC.c.purged_position).where(SYNC.c.user_id == bindparam("owner"))


def changes_after(
    connection: Connection, user_id: str, position: int, limit: int
) -> tuple[list[Row[Any]], int]:
    """Up to `limit + 1` of the user's changes after `position`, in position order (a task
    in its latest state, or a tombstone), and the highest position whose tombstone is gone.

    The page is one statement, so tasks and tombstones come from one snapshot; each branch
    is a bounded scan of its (user_id, change_position) index. The purged position is read
    after it: a purge that the page might have missed shows there, so it is never missed."""
    parameters = {"owner": user_id, "after": position, "limit": limit + 1}
    page = list(connection.execute(_CHANGES, parameters).all())
    purged = connection.scalar(_PURGED_POSITION, {"owner": user_id})
    return page, int(purged or 0)
