"""What several devices and retrying clients need (docs/decisions/0005): ETags from task
versions, If-Match and If-None-Match, feed cursors, and `Idempotency-Key` replay."""

import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from connexion import context
from sqlalchemy import Connection
from starlette.datastructures import Headers

from db import idempotency
from db.engine import write_transaction
from service import metrics
from service.problems import Conflict, Gone, PreconditionRequired, UnprocessableEntity
from service.settings import current_settings

Response = tuple[Any, int, dict[str, str]]
REPLAYED_HEADER = "Idempotent-Replayed"
_STRONG_TAG = re.compile(r'\s*"(\d{1,18})"\s*')
_ANY_TAG = re.compile(r'\s*(?:W/)?"(\d{1,18})"\s*')


# --- ETags and conditional requests ---


def etag(version: int) -> str:
    """A strong entity tag; clients treat it as opaque."""
    return f'"{version}"'


def request_header(name: str) -> str | None:
    value: str | None = Headers(scope=context.scope).get(name)
    return value


def if_match_versions() -> list[int] | None:
    """The versions `If-Match` accepts: None when any will do (`*`, or no header at all);
    428 when the header is missing and REQUIRE_IF_MATCH is on. Weak tags never match."""
    header = request_header("If-Match")
    if header is None:
        if current_settings.get().require_if_match:
            raise PreconditionRequired()
        return None
    if header.strip() == "*":
        return None
    return [
        int(match.group(1)) for part in header.split(",") if (match := _STRONG_TAG.fullmatch(part))
    ]


def none_match(version: int) -> bool:
    """Whether `If-None-Match` names this version (weak comparison, RFC 9110 §13.1.2)."""
    header = request_header("If-None-Match")
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return any(
        (match := _ANY_TAG.fullmatch(part)) and int(match.group(1)) == version
        for part in header.split(",")
    )


# --- Feed cursors ---


def encode_cursor(position: int) -> str:
    # Versioned, so that its form can change; clients treat it as opaque.
    return f"v1.{position}"


def decode_cursor(cursor: str) -> int:
    """The position a cursor names; the contract's pattern has already checked its form."""
    return int(cursor.removeprefix("v1."))


def check_not_purged(position: int, purged_position: int) -> None:
    """A cursor before a purged tombstone may have missed that deletion. Position 0 holds
    nothing, so it has nothing to miss."""
    if 0 < position < purged_position:
        raise Gone(
            "This cursor is older than the deleted tasks the server keeps "
            "(TOMBSTONE_RETENTION); resync from the beginning by leaving out the cursor."
        )


# --- Idempotency-Key ---


def idempotent(user_id: str, body: Any, write: Callable[[Connection], Response]) -> Response:
    """Run `write` in a transaction; with an Idempotency-Key, store its answer with the key in
    that same transaction, or replay the answer stored for an earlier identical request."""
    key = request_header("Idempotency-Key")
    with write_transaction() as connection:
        if key is None:
            return write(connection)
        if not idempotency.lock(connection, user_id, key):
            metrics.IDEMPOTENCY_CONFLICTS.inc()
            raise Conflict(
                "A request with this Idempotency-Key is still in progress; retry it later."
            )
        ttl = timedelta(seconds=current_settings.get().idempotency_key_ttl)
        fingerprint = _fingerprint(body)
        stored = idempotency.find(connection, user_id, key, ttl)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                metrics.IDEMPOTENCY_CONFLICTS.inc()
                raise UnprocessableEntity(
                    "Idempotency-Key: this key was used for a different request; "
                    "use a new key for a new request."
                )
            metrics.IDEMPOTENCY_REPLAYS.inc()
            return _replay(stored)
        answer = write(connection)
        _store(connection, user_id, key, fingerprint, answer)
        return answer


def _fingerprint(body: Any) -> bytes:
    scope = context.scope
    request = {"method": scope["method"], "path": scope["path"], "body": body}
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).digest()


def _store(
    connection: Connection, user_id: str, key: str, fingerprint: bytes, answer: Response
) -> None:
    body, status, headers = answer
    idempotency.store(
        connection,
        user_id,
        key,
        fingerprint=fingerprint,
        status=status,
        body=json.dumps(body),
        location=headers.get("Location"),
        etag=headers.get("ETag"),
    )


def _replay(stored: Any) -> Response:
    headers = {"Content-Type": "application/json", REPLAYED_HEADER: "true"}
    if stored.location:
        headers["Location"] = stored.location
    if stored.etag:
        headers["ETag"] = stored.etag
    return json.loads(stored.body), stored.status, headers
