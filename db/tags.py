"""Tag queries: a user's tags with their counts, renaming and deleting a tag on every task.
Each change runs in `db.engine.atomic()` and stamps every task it touches as changed."""

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlmodel import Session

from db.tasks import TAGS, mark_changed, now


def list_counts(session: Session, user_id: str) -> list[dict[str, Any]]:
    query = (
        select(TAGS.c.name, func.count().label("count"))
        .where(TAGS.c.user_id == user_id)
        .group_by(TAGS.c.name)
        .order_by(TAGS.c.name)
    )
    return [{"name": name, "count": int(count)} for name, count in session.execute(query)]


def rename(session: Session, user_id: str, old: str, new: str) -> dict[str, Any] | None:
    """Rename `old` to `new` on every task; a task carrying both keeps `new` once.
    None when no task carries `old`."""
    carriers = _carriers(session, user_id, old)
    if not carriers:
        return None
    if new != old:
        has_new = select(TAGS.c.task_id).where(TAGS.c.user_id == user_id, TAGS.c.name == new)
        session.execute(
            delete(TAGS).where(
                TAGS.c.user_id == user_id, TAGS.c.name == old, TAGS.c.task_id.in_(has_new)
            )
        )
        session.execute(
            update(TAGS).where(TAGS.c.user_id == user_id, TAGS.c.name == old).values(name=new)
        )
        mark_changed(session, user_id, carriers, now())
    count = session.scalar(
        select(func.count()).where(TAGS.c.user_id == user_id, TAGS.c.name == new)
    )
    return {"name": new, "count": int(count or 0)}


def remove(session: Session, user_id: str, name: str) -> bool:
    """Remove the tag from every task; False when no task carries it."""
    removed = session.scalars(
        delete(TAGS).where(TAGS.c.user_id == user_id, TAGS.c.name == name).returning(TAGS.c.task_id)
    ).all()
    mark_changed(session, user_id, removed, now())
    return bool(removed)


def _carriers(session: Session, user_id: str, name: str) -> list[int]:
    query = select(TAGS.c.task_id).where(TAGS.c.user_id == user_id, TAGS.c.name == name)
    # Locked, so that a concurrent change of these tasks' tags waits for the rename.
    return list(session.scalars(query.with_for_update()))
