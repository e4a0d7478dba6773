"""Stored answers for `Idempotency-Key`s (docs/decisions/0005). They are written in the
transaction of the write they answer, so a key is stored exactly when the write committed."""

import hashlib
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Row, Table, delete, func, insert, select

from db.models import IdempotencyKey
from db.tasks import now

KEYS: Table = IdempotencyKey.__table__  # type: ignore[attr-defined]


def lock(connection: Connection, user_id: str, key: str) -> bool:
    """Claim the key for this transaction; False when another transaction holds it (that
    request is still running). On SQLite, BEGIN IMMEDIATE already runs writers one by one."""
    if connection.dialect.name != "postgresql":
        return True
    digest = hashlib.sha256(f"{user_id}\n{key}".encode()).digest()
    # A transaction-scoped advisory lock: released at commit, safe through PgBouncer.
    claimed = connection.scalar(
        select(func.pg_try_advisory_xact_lock(int.from_bytes(digest[:8], "big", signed=True)))
    )
    return bool(claimed)


def find(connection: Connection, user_id: str, key: str, ttl: timedelta) -> Row[Any] | None:
    """The answer stored for the key, if it has not expired. Expired keys of the user are
    deleted on the way, so no job has to clean them up."""
    connection.execute(
        delete(KEYS).where(KEYS.c.user_id == user_id, KEYS.c.created_at < now() - ttl)
    )
    return connection.execute(
        select(*KEYS.columns).where(KEYS.c.user_id == user_id, KEYS.c.key == key)
    ).first()


def store(
    connection: Connection,
    user_id: str,
    key: str,
    *,
    fingerprint: bytes,
    status: int,
    body: str,
    location: str | None,
    etag: str | None,
) -> None:
    connection.execute(
        insert(KEYS).values(
            user_id=user_id,
            key=key,
            fingerprint=fingerprint,
            status=status,
            body=body,
            location=location,
            etag=etag,
            created_at=now(),
        )
    )
