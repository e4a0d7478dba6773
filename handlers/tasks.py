"""Task operations. Connexion has authenticated the user and validated every
parameter and body against the contract before these run."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from connexion import NoContent
from sqlalchemy import Connection, Row

from db import tasks
from db.engine import transaction, write_transaction
from db.recurrence import InvalidTaskError
from service import metrics, sync
from service.patches.violations import pointer
from service.problems import NotFound, PreconditionFailed, UnprocessableEntity
from service.responses import JSON, json_body, task_location
from service.settings import current_settings

Body = dict[str, Any]
Response = tuple[Any, int, dict[str, str]]
T = TypeVar("T")


def list_tasks(
    user_id: str,
    status: str = "all",
    sort: str = "created",
    order: str | None = None,
    q: str | None = None,
    tag: list[str] | None = None,
    priority: list[str] | None = None,
    due_from: str | None = None,
    due_to: str | None = None,
    remind_before: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Response:
    """The user's tasks, filtered, sorted and paged."""
    with transaction() as connection:
        page, total = tasks.list_page(
            connection,
            user_id,
            status=status,
            sort=sort,
            order=order,
            q=q,
            limit=limit,
            offset=offset,
            tag=tag,
            priority=priority,
            due_from=due_from,
            due_to=due_to,
            remind_before=remind_before,
        )
        return json_body(page, headers={"X-Total-Count": str(total)})


def create_task(user_id: str, body: Body) -> Response:
    """A new task for the user; with an Idempotency-Key, at most one per key."""

    def create(connection: Connection) -> Response:
        task = _checked(lambda: tasks.create(connection, user_id, body))
        return _task_answer(task, 201, {"Location": task_location(user_id, task["id"])})

    return sync.idempotent(user_id, body, create)


def get_task(user_id: str, task_id: int) -> Response:
    """One of the user's tasks; 304 when If-None-Match names its current version."""
    with transaction() as connection:
        task = _found(tasks.get(connection, user_id, task_id), task_id)
    if sync.none_match(task["version"]):
        # Connexion wants a media type to pick among the operation's; 304 sends no body.
        return NoContent, 304, {"ETag": sync.etag(task["version"]), "Content-Type": JSON}
    return _task_answer(task)


def update_task(user_id: str, task_id: int, body: Body) -> Response:
    """Change the fields present in the body, keep the others."""
    versions = sync.if_match_versions()
    with write_transaction() as connection:
        task = _checked(lambda: tasks.update_fields(connection, user_id, task_id, body, versions))
        return _task_answer(_written(connection, task, user_id, task_id))


def patch_task(user_id: str, task_id: int, body: Body) -> Response:
    """A JSON Merge Patch of the task: the same change as `update_task`, retry-safe."""
    versions = sync.if_match_versions()

    def patch(connection: Connection) -> Response:
        task = _checked(lambda: tasks.update_fields(connection, user_id, task_id, body, versions))
        return _task_answer(_written(connection, task, user_id, task_id))

    return sync.idempotent(user_id, body, patch)


def delete_task(user_id: str, task_id: int) -> tuple[Any, int]:
    """Delete one of the user's tasks, leaving a tombstone in the feed."""
    versions = sync.if_match_versions()
    retention = timedelta(seconds=current_settings.get().tombstone_retention)
    with write_transaction() as connection:
        if not tasks.delete_owned(connection, user_id, task_id, versions, retention):
            _written(connection, None, user_id, task_id)
    return NoContent, 204


def complete_task(user_id: str, task_id: int, body: Body | None = None) -> Response:
    """Set `completed` from the body, or flip it when there is no body."""
    versions = sync.if_match_versions()

    def complete(connection: Connection) -> Response:
        completed = (body or {}).get("completed")
        task = _checked(
            lambda: tasks.set_completion(connection, user_id, task_id, completed, versions)
        )
        return _task_answer(_written(connection, task, user_id, task_id))

    return sync.idempotent(user_id, body, complete)


def list_task_changes(user_id: str, cursor: str | None = None, limit: int = 500) -> Response:
    """The user's changes after the cursor, in commit order."""
    position = sync.decode_cursor(cursor) if cursor is not None else 0
    with transaction() as connection:
        rows, purged_position = tasks.changes_after(connection, user_id, position, limit)
        page = rows[:limit]
        bodies = iter(tasks.bodies(connection, [row for row in page if not row.deleted]))
    sync.check_not_purged(position, purged_position)
    metrics.CHANGE_FEED_PAGES.inc()
    return json_body(
        {
            "changes": [_change(row, bodies) for row in page],
            "cursor": sync.encode_cursor(page[-1].position if page else position),
            "has_more": len(rows) > limit,
        }
    )


def _change(row: Row[Any], bodies: Any) -> dict[str, Any]:
    if row.deleted:
        return {"id": row.id, "deleted": True, "task": None}
    return {"id": row.id, "deleted": False, "task": next(bodies)}


def _checked(write: Callable[[], T]) -> T:
    """The write, with a task the schema could not rule out answered 422 (inside the
    transaction, so nothing of it is stored). The message names its field first."""
    try:
        return write()
    except InvalidTaskError as error:
        detail = str(error)
        field = detail.split(":", 1)[0]
        raise UnprocessableEntity(
            detail, errors=[{"detail": detail, "pointer": pointer([field])}]
        ) from None


def _task_answer(task: Body, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return json_body(task, status, {"ETag": sync.etag(task["version"]), **(headers or {})})


def _written(connection: Connection, task: Body | None, user_id: str, task_id: int) -> Body:
    """The written task; when nothing was written, 404 for a task the user does not have,
    or 412 (with its current ETag) for one whose version If-Match did not name."""
    if task is not None:
        return task
    current = tasks.get(connection, user_id, task_id)
    if current is None:
        raise _not_found(task_id)
    tag = sync.etag(current["version"])
    raise PreconditionFailed(
        f"Task {task_id} has changed (its ETag is now {tag}); fetch it and retry.", tag
    )


def _found(task: Body | None, task_id: int) -> Body:
    if task is None:
        raise _not_found(task_id)
    return task


def _not_found(task_id: int) -> NotFound:
    return NotFound(f"Task {task_id} not found.")
