"""Every violation of a request, reported field by field (the 422's `errors`).

- By default, Connexion reports only the first violation, as one string, and its parameter
  validator stops the request before the body is read; we override it because a form needs
  every field it should mark: each 422 keeps that string as `detail` and adds `errors`, one
  entry per parameter (`parameter`) or body location (`pointer`, an RFC 6901 JSON Pointer in
  URI fragment form), an unknown property under its own pointer. Parameter violations are
  held in the request's scope until the body is validated too, then raised together
  (`RaiseParameterViolations`). Pinned by: tests/api/test_violations.py. Can go when:
  Connexion collects every error (it has no such option in 3.3).
"""

import typing as t
from dataclasses import dataclass
from urllib.parse import quote

from jsonschema import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from service.contract import SCHEMA_NAME
from service.problems import UnprocessableEntity

PENDING = "tasks_api.parameter_violations"
"""The scope key under which parameter violations wait for the body's."""

# RFC 3986 `fragment` characters beyond the unreserved ones, which quote() keeps anyway.
_FRAGMENT_SAFE = "!$&'()*+,;=:@"


@dataclass(frozen=True)
class Violation:
    """One broken rule: `summary` is the sentence `detail` has always been, `entry` the
    member of `errors`."""

    summary: str
    entry: dict[str, str]


def pointer(path: t.Iterable[str | int]) -> str:
    """An RFC 6901 JSON Pointer in URI fragment form: `~` and `/` escaped, then the rest
    percent-encoded (a space, a quote or a non-ASCII letter cannot stand in a fragment)."""
    tokens = (str(part).replace("~", "~0").replace("/", "~1") for part in path)
    return "#" + "".join("/" + quote(token, safe=_FRAGMENT_SAFE) for token in tokens)


def readable(error: ValidationError) -> str:
    """The schema's own description says what a pattern means better than the regex."""
    if error.validator == "pattern" and isinstance(error.schema, dict):
        return str(error.schema.get("description") or error.message)
    return str(error.message)


def body_violations(errors: t.Iterable[ValidationError]) -> list[Violation]:
    """One violation per body location, the first the schema's order finds there; an
    unknown or missing property is reported at its own location."""
    found: dict[str, Violation] = {}
    for error in errors:
        for path, message in _located(error):
            where = pointer(path)
            if where not in found:
                text = "/".join(str(part) for part in path) or "body"
                found[where] = Violation(
                    f"{text}: {message}", {"detail": message, "pointer": where}
                )
    return list(found.values())


def _located(error: ValidationError) -> list[tuple[list[str | int], str]]:
    path = list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        name = schema.get(SCHEMA_NAME)
        message = f"not a field of {name}" if name else "not a known field"
        return [([*path, key], message) for key in _unknown(error.instance, schema)]
    if error.validator == "required" and isinstance(error.instance, dict):
        required = error.validator_value if isinstance(error.validator_value, list) else []
        return [
            ([*path, key], f"{key!r} is a required property")
            for key in required
            if key not in error.instance
        ]
    return [(path, readable(error))]


def _unknown(instance: dict[str, t.Any], schema: dict[str, t.Any]) -> list[str]:
    known = schema.get("properties", {})
    return [key for key in instance if key not in known]


def parameter_violation(where: str, name: str, message: str) -> Violation:
    return Violation(
        f"{where} parameter '{name}': {message}", {"detail": message, "parameter": name}
    )


def unprocessable(violations: list[Violation], detail: str | None = None) -> UnprocessableEntity:
    """The 422: `detail` the given sentence (or the first violation's), `errors` them all."""
    return UnprocessableEntity(
        detail or violations[0].summary, errors=[violation.entry for violation in violations]
    )


def defer(scope: Scope, violations: list[Violation]) -> None:
    scope[PENDING] = violations


def pending(scope: Scope) -> list[Violation]:
    found: list[Violation] = scope.get(PENDING, [])
    return found


class RaiseParameterViolations:
    """Placed right after Connexion's request validation (`BEFORE_CONTEXT`): parameter
    violations the body did not report with its own are raised here, before any handler."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if violations := pending(scope):
            raise unprocessable(violations)
        await self.app(scope, receive, send)
