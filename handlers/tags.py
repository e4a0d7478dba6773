"""Tag operations. Connexion has authenticated the user and validated every parameter and
body against the contract before these run."""

from typing import Any

from connexion import NoContent

from db import tags
from db.engine import transaction, write_transaction
from db.recurrence import InvalidTaskError
from db.tasks import normalise_tag, normalise_tags
from service.problems import NotFound, UnprocessableEntity
from service.responses import json_body

Response = tuple[Any, int, dict[str, str]]


def list_tags(user_id: str) -> Response:
    """The user's tags with the number of tasks carrying each, by name."""
    with transaction() as connection:
        return json_body(tags.list_counts(connection, user_id))


def rename_tag(user_id: str, tag: str, body: dict[str, Any]) -> Response:
    """Rename a tag on every task, merging into an existing tag of the new name."""
    old = normalise_tag(tag)
    try:
        (new,) = normalise_tags([body["name"]])
    except InvalidTaskError as error:
        detail = str(error).replace("tags:", "name:", 1)
        raise UnprocessableEntity(
            detail, errors=[{"detail": detail, "pointer": "#/name"}]
        ) from None
    with write_transaction() as connection:
        renamed = tags.rename(connection, user_id, old, new)
    if renamed is None:
        raise _not_found(old)
    return json_body(renamed)


def delete_tag(user_id: str, tag: str) -> tuple[Any, int]:
    """Remove a tag from every task."""
    name = normalise_tag(tag)
    with write_transaction() as connection:
        if not tags.remove(connection, user_id, name):
            raise _not_found(name)
    return NoContent, 204


def _not_found(name: str) -> NotFound:
    return NotFound(f"Tag {name!r} not found.")
