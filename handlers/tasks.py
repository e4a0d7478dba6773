"""Task operations. Connexion has authenticated the user and validated every
parameter and body against the contract before these run."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from connexion import NoContent
from sqlmodel import Session

from db import tasks
from db.engine import atomic, transaction
from db.recurrence import InvalidTaskError
from service.problems import NotFound, UnprocessableEntity
from service.responses import json_body

Body = dict[str, Any]
Response = tuple[Any, int, dict[str, str]]


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
    with transaction() as session:
        page, total = tasks.list_page(
            session,
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
    """A new task for the user."""
    # A task without tags is one statement; with tags, two that commit together.
    with _checked(atomic() if body.get("tags") else transaction()) as session:
        task = tasks.create(session, user_id, body)
    return json_body(task, 201, headers={"Location": f"/api/{user_id}/tasks/{task['id']}"})


def get_task(user_id: str, task_id: int) -> Response:
    """One of the user's tasks."""
    with transaction() as session:
        return json_body(_found(tasks.get(session, user_id, task_id), task_id))


def update_task(user_id: str, task_id: int, body: Body) -> Response:
    """Change the fields present in the body, keep the others."""
    with _checked(atomic()) as session:
        task = tasks.update_fields(session, user_id, task_id, body)
        return json_body(_found(task, task_id))


def delete_task(user_id: str, task_id: int) -> tuple[Any, int]:
    """Delete one of the user's tasks."""
    with atomic() as session:
        if not tasks.delete_owned(session, user_id, task_id):
            raise _not_found(task_id)
    return NoContent, 204


def complete_task(user_id: str, task_id: int, body: Body | None = None) -> Response:
    """Set `completed` from the body, or flip it when there is no body."""
    with _checked(atomic()) as session:
        task = tasks.set_completion(session, user_id, task_id, (body or {}).get("completed"))
        return json_body(_found(task, task_id))


@contextmanager
def _checked(unit: Any) -> Iterator[Session]:
    """The unit of work, with a task the schema could not rule out answered 422."""
    try:
        with unit as session:
            yield session
    except InvalidTaskError as error:
        raise UnprocessableEntity(str(error)) from None


def _found(task: Body | None, task_id: int) -> Body:
    if task is None:
        raise _not_found(task_id)
    return task


def _not_found(task_id: int) -> NotFound:
    return NotFound(f"Task {task_id} not found.")
