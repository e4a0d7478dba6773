"""Task operations. Connexion has authenticated the user and validated every
parameter and body against the contract before these run."""

from typing import Any

from connexion import NoContent
from sqlalchemy import Row

from db import tasks
from db.engine import transaction
from service.problems import NotFound
from service.responses import json_body, task_location

Body = dict[str, Any]
Response = tuple[Any, int, dict[str, str]]


def list_tasks(
    user_id: str,
    status: str = "all",
    sort: str = "created",
    order: str | None = None,
    q: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Response:
    """The user's tasks, filtered, sorted and paged."""
    with transaction() as session:
        page, total = tasks.list_page(
            session, user_id, status=status, sort=sort, order=order, q=q, limit=limit, offset=offset
        )
        return json_body(
            [tasks.to_dict(task) for task in page], headers={"X-Total-Count": str(total)}
        )


def create_task(user_id: str, body: Body) -> Response:
    """A new task for the user."""
    with transaction() as session:
        task = tasks.create(session, user_id, body)
    return json_body(
        tasks.to_dict(task), 201, headers={"Location": task_location(user_id, task.id)}
    )


def get_task(user_id: str, task_id: int) -> Response:
    """One of the user's tasks."""
    with transaction() as session:
        return json_body(tasks.to_dict(_found(tasks.get(session, user_id, task_id), task_id)))


def update_task(user_id: str, task_id: int, body: Body) -> Response:
    """Change the fields present in the body, keep the others."""
    with transaction() as session:
        task = tasks.update_fields(session, user_id, task_id, body)
        return json_body(tasks.to_dict(_found(task, task_id)))


def delete_task(user_id: str, task_id: int) -> tuple[Any, int]:
    """Delete one of the user's tasks."""
    with transaction() as session:
        if not tasks.delete_owned(session, user_id, task_id):
            raise _not_found(task_id)
    return NoContent, 204


def complete_task(user_id: str, task_id: int, body: Body | None = None) -> Response:
    """Set `completed` from the body, or flip it when there is no body."""
    with transaction() as session:
        task = tasks.set_completion(session, user_id, task_id, (body or {}).get("completed"))
        return json_body(tasks.to_dict(_found(task, task_id)))


def _found(task: Row[Any] | None, task_id: int) -> Row[Any]:
    if task is None:
        raise _not_found(task_id)
    return task


def _not_found(task_id: int) -> NotFound:
    return NotFound(f"Task {task_id} not found.")
