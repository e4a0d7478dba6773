"""Tag queries: a user's tags with their counts, renaming and deleting a tag on every task.
Each change runs in `db.engine.write_transaction()` and stamps every task it touches as
changed (`updated_at`, `version`, a feed position of its own)."""

from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from db.tasks import TAGS, TASKS, chunks, lock_feed, stamp_tasks


def list_counts(connection: Connection, user_id: str) -> list[dict[str, Any]]:
    query = (
        select(TAGS.c.name, func.count().label("count"))
        .where(TAGS.c.user_id == user_id)
        .group_by(TAGS.c.name)
        .order_by(TAGS.c.name)
    )
    return [{"name": name, "count": int(count)} for name, count in connection.execute(query)]


def rename(connection: Connection, user_id: str, old: str, new: str) -> dict[str, Any] | None:
    """Rename `old` to `new` on every task; a task carrying both keeps `new` once.
    None when no task carries `old`."""
    carriers = _carriers(connection, user_id, old)
    if not carriers:
        return None
    if new != old:
        has_new = select(TAGS.c.task_id).where(TAGS.c.user_id == user_id, TAGS.c.name == new)
        for ids in chunks(carriers):
            # Only the tasks locked above: a task tagged since then is left to its own writer.
            ours = (TAGS.c.user_id == user_id, TAGS.c.name == old, TAGS.c.task_id.in_(ids))
            connection.execute(delete(TAGS).where(*ours, TAGS.c.task_id.in_(has_new)))
            connection.execute(update(TAGS).where(*ours).values(name=new))
        stamp_tasks(connection, user_id, carriers)
    count = connection.scalar(
        select(func.count()).where(TAGS.c.user_id == user_id, TAGS.c.name == new)
    )
    return {"name": new, "count": int(count or 0)}


def remove(connection: Connection, user_id: str, name: str) -> bool:
    """Remove the tag from every task; False when no task carries it."""
    carriers = _carriers(connection, user_id, name)
    for ids in chunks(carriers):
        connection.execute(
            delete(TAGS).where(
                TAGS.c.user_id == user_id, TAGS.c.name == name, TAGS.c.task_id.in_(ids)
            )
        )
    stamp_tasks(connection, user_id, carriers)
    return bool(carriers)


def _carriers(connection: Connection, user_id: str, name: str) -> list[int]:
    """The tasks carrying the tag, locked in id order. The user's feed row is locked before
    any task's, and a task's row before its tags, as `updateTask` does, so the two never
    wait for each other in a cycle."""
    lock_feed(connection, user_id)
    tagged = select(TAGS.c.task_id).where(TAGS.c.user_id == user_id, TAGS.c.name == name)
    query = (
        select(TASKS.c.id)
        .where(TASKS.c.user_id == user_id, TASKS.c.id.in_(tagged))
        .order_by(TASKS.c.id)
        .with_for_update()
    )
    return list(connection.scalars(query))
