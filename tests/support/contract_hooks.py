"""Schemathesis hooks shared by the in-process contract suite and `make contract-test`
(which loads this module through SCHEMATHESIS_HOOKS)."""

import os
import re
import uuid
from typing import Any

import schemathesis


class SignedIn:
    """The user every request acts as: the bearer token's `sub`."""

    user_id: str | None = os.environ.get("CONTRACT_USER_ID")


@schemathesis.hook
def before_load_schema(_context: schemathesis.HookContext, raw_schema: dict[str, Any]) -> None:
    """Narrow the path's user id to the token's user, so valid cases get past the 403 to
    the handlers and invalid ones are any other id.

    Not a configured `[parameters]` value: that replaces the invalid user ids generated on
    purpose after the fact, and such a case is then reported as invalid data accepted."""
    if SignedIn.user_id:
        user_id = raw_schema["components"]["schemas"]["UserId"]
        user_id["enum"] = [SignedIn.user_id]


VISIBLE_ASCII = re.compile(r"[\x21-\x7e]{1,255}")


@schemathesis.hook
def before_call(
    _context: schemathesis.HookContext, case: schemathesis.Case[Any], **_kwargs: Any
) -> None:
    """Give every well-formed Idempotency-Key a fresh value. The generator draws few distinct
    keys, and the contract answers a key reused for another request with 422, which a
    check of one request at a time would take for valid data refused. Malformed keys stay."""
    headers = case.headers
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and VISIBLE_ASCII.fullmatch(key):
        headers["Idempotency-Key"] = uuid.uuid4().hex
