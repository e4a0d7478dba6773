"""Connexion's request validators, corrected (its `validator_map`).

- By default, Connexion answers 400 for every schema violation; we override it because the
  contract promises 422 for a value the schema rejects and keeps 400 for a body that is not
  JSON at all. Pinned by: the 422 tables in tests/api/. Can go when: Connexion lets the
  status be configured.
- By default, its JSON parser answers 500 for a body that is not UTF-8 and accepts `NaN`
  and lone surrogates; we answer 400. Pinned by: tests/api/test_create_task.py.
- By default, it decides "required body missing" from `Content-Length` alone, so an optional
  body left out is refused and a chunked body is taken for a missing one (connexion #2020);
  we decide after reading. Pinned by: tests/api/test_complete_task.py (a PATCH without a
  body toggles) and tests/api/test_create_task.py (a chunked POST is created).
- By default, its Draft 4 format checker does not check `format: date`, so `2026-02-30`
  passed; ours does. Pinned by: tests/api/test_create_task.py.
- By default, it builds (and re-resolves) a jsonschema validator per request and schema;
  ours compiles one per schema. Measured in docs/performance.md.
- By default, it knows only `application/json` bodies by our map; we register
  `application/merge-patch+json` (patchTask) with the same validator.
  Pinned by: tests/api/test_patch_task.py.
- By default, it appends a path's parameters to each operation's own list in place, once per
  middleware that builds the operation, so an operation with parameters of its own (listTasks,
  and every one taking If-Match or Idempotency-Key) validated its path ids six times and
  reported each violation six times; we hand it operations that already hold their path's
  parameters (`inline_path_parameters`). Pinned by: tests/api/test_violations.py (a bad id
  on deleteTask, which takes If-Match, is one entry). Can go when: Connexion copies the list.
- By default, it reports the first violation only; ours report every one, as
  patches/violations.py describes (`_check_schema`, `ParametersValidator`).
- By default, what it parses to validate (the JSON body, the typed path and query values) is
  thrown away and parsed again for the handler; ours leaves it in the request's scope for
  `service.dispatch` to pass on. Pinned by: tests/api/test_dispatch.py.
Each can go when Connexion does the same by itself."""

import json
import re
import typing as t
from datetime import date

from connexion.exceptions import BadRequestProblem
from connexion.json_schema import Draft4RequestValidator
from connexion.lifecycle import ConnexionRequest
from connexion.utils import is_null, is_nullable
from connexion.validators import JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import best_match
from starlette.types import Receive, Scope

from service.dispatch import PARSED_BODY, PARSED_PARAMETERS
from service.patches.violations import (
    Violation,
    body_violations,
    defer,
    parameter_violation,
    pending,
    readable,
    unprocessable,
)

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

FORMAT_CHECKER = FormatChecker()
FORMAT_CHECKER.checkers = dict(Draft4Validator.FORMAT_CHECKER.checkers)


@FORMAT_CHECKER.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    # date.fromisoformat alone also takes "20260101" and "2026-W01-1".
    return bool(_ISO_DATE.fullmatch(value)) and date.fromisoformat(value) is not None


_compiled: dict[tuple[int, type], tuple[dict[str, t.Any], t.Any]] = {}


def compiled(schema: dict[str, t.Any], cls: type = Draft4RequestValidator) -> t.Any:
    """One validator per schema: Connexion would build (and re-resolve) it on every request.
    The schema dicts live as long as the app, so their identity is a stable key."""
    key = (id(schema), cls)
    cached = _compiled.get(key)
    if cached is None or cached[0] is not schema:
        cached = (schema, cls(schema, format_checker=FORMAT_CHECKER))
        _compiled[key] = cached
    return cached[1]


def _reject_constant(name: str) -> t.NoReturn:
    raise ValueError(f"{name} is not a JSON value")


class JsonBodyValidator(JSONRequestBodyValidator):
    def __init__(self, *, required: bool = False, **kwargs: t.Any) -> None:
        # Connexion decides "required body missing" from Content-Length alone, which
        # refuses every chunked body; decide it after reading instead.
        super().__init__(required=False, **kwargs)
        self._body_required = required

    async def _parse(self, stream: t.AsyncGenerator[bytes, None], scope: Scope) -> t.Any:
        body = await self._read(stream)
        scope.setdefault("extensions", {})[PARSED_BODY] = body
        return body

    async def _read(self, stream: t.AsyncGenerator[bytes, None]) -> t.Any:
        raw = b"".join([chunk async for chunk in stream])
        if not raw:
            return None
        try:
            body = json.loads(raw.decode(self._encoding), parse_constant=_reject_constant)
            # An unpaired surrogate escape parses, but is not text any database can store.
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except (UnicodeError, LookupError):
            raise BadRequestProblem(detail="Request body is not valid UTF-8 text.") from None
        except RecursionError:
            raise BadRequestProblem(detail="Request body is nested too deeply.") from None
        except ValueError as error:
            raise BadRequestProblem(detail=f"Request body is not valid JSON: {error}") from None
        if body is None and not self._nullable:
            # A JSON `null` is a body, not a missing one, so the schema judges it.
            self._check_schema(body)
        return body

    def _validate(self, body: t.Any) -> None:
        if body is None:
            if self._body_required:
                raise BadRequestProblem(detail="A request body is required.")
            return
        self._check_schema(body)

    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        # The parameters' violations, reported with the body's (see patches/violations.py).
        self._parameter_violations = pending(scope)
        wrapped: tuple[Receive, Scope] = await super().wrap_receive(receive, scope=scope)
        return wrapped

    def _check_schema(self, body: t.Any) -> None:
        errors = list(compiled(self._schema).iter_errors(body))
        if not errors:
            return
        parameters = getattr(self, "_parameter_violations", [])
        best = best_match(errors)
        assert best is not None
        # `detail` stays the one sentence it always was: the parameters' first, if any.
        where = "/".join(str(part) for part in best.absolute_path) or "body"
        detail = parameters[0].summary if parameters else f"{where}: {readable(best)}"
        raise unprocessable([*parameters, *body_violations(errors)], detail)


class ParametersValidator(ParameterValidator):
    """Every parameter's violation, not the first only; held until the body is checked."""

    def validate(self, scope: Scope) -> None:
        request = ConnexionRequest(scope, uri_parser=self.uri_parser)
        violations = [*self._unknown_query(request), *self._each_parameter(request)]
        if violations:
            defer(scope, violations)
            return
        parsed = (request.path_params, request.query_params)
        scope.setdefault("extensions", {})[PARSED_PARAMETERS] = parsed

    def _unknown_query(self, request: ConnexionRequest) -> list[Violation]:
        if not self.strict_validation:
            return []
        unknown = self.validate_query_parameter_list(request, self.security_query_params)
        return [
            parameter_violation("query", name, "not a parameter of this operation")
            for name in sorted(unknown)
        ]

    def _each_parameter(self, request: ConnexionRequest) -> list[Violation]:
        # Connexion leaves a value it cannot convert (`limit=ten`) as the string it was,
        # so the schema reports it like any other.
        values: dict[str, t.Callable[[str], t.Any]] = {
            "query": lambda name: request.query_params.get(name),
            "path": lambda name: request.path_params.get(name.replace("-", "_")),
            "header": lambda name: request.headers.get(name),
            "cookie": lambda name: request.cookies.get(name),
        }
        found = []
        for where, value_of in values.items():
            for param in self.parameters.get(where, []):
                message = _check(value_of(param["name"]), param)
                if message is not None:
                    found.append(parameter_violation(where, param["name"], message))
        return found


def _check(value: t.Any, param: dict[str, t.Any]) -> str | None:
    if value is None:
        return "missing" if param.get("required") else None
    if is_nullable(param) and is_null(value):
        return None
    error = best_match(compiled(param.get("schema", param), Draft4Validator).iter_errors(value))
    return None if error is None else readable(error)


def inline_path_parameters(contract: dict[str, t.Any]) -> dict[str, t.Any]:
    """The contract with each path's parameters moved into its operations (an operation's
    own parameter of the same name and location wins, as OpenAPI says). Changes `contract`."""
    for item in contract["paths"].values():
        shared = item.pop("parameters", [])
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            own = operation.get("parameters", [])
            names = {(p.get("name"), p.get("in")) for p in own if "$ref" not in p}
            refs = {p["$ref"] for p in own if "$ref" in p}
            inherited = [
                p
                for p in shared
                if p.get("$ref") not in refs and (p.get("name"), p.get("in")) not in names
            ]
            operation["parameters"] = [*own, *inherited]
    return contract


VALIDATOR_MAP = {
    "parameter": ParametersValidator,
    # JSON Merge Patch (patchTask) is JSON, parsed and checked the same way.
    "body": {
        "application/json": JsonBodyValidator,
        "application/merge-patch+json": JsonBodyValidator,
    },
}
