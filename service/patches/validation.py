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
- By default, its `date-time` check is whatever optional package happens to be installed
  (rfc3339-validator, or none at all); we override it so that the check is exactly what the
  server parses (`db.recurrence.parse_instant`: an offset required, a leap second taken).
  Pinned by: tests/api/test_organise_filters.py.
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
- By default, jsonschema runs `pattern` on a string `maxLength` already refused, so a long
  string costs a regex run the length check made pointless; ours skips it. Pinned by:
  tests/api/test_patterns.py.
- By default, Connexion decodes the body for validation with the request's `charset` and
  hands the handler a second parse of the raw bytes (as UTF-8), so the two can disagree
  (`charset=hz` stored 2,000 characters past `maxLength: 1000`); we answer 415 for any
  charset but UTF-8 (RFC 8259 §8.1), and the handler receives the re-encoded object the
  validator accepted. Pinned by: tests/api/test_media_types.py, tests/service/test_security.py.
- By default, nesting depth is bounded only by Python's recursion limit, hit at different
  depths by the parser, the validator and the handler's parse (a 500); we answer 400 past
  `MAX_DEPTH` levels before any recursive parsing. Pinned by: tests/api/test_media_types.py.
- By default, it parses and validates on the event loop, so one large body stalls every
  other request; ours does it in a worker thread when the body is large. Pinned by:
  tests/service/test_security.py (`/health` answers while a 64 KiB title is validated).
Each can go when Connexion does the same by itself."""

import json
import re
import typing as t
from collections.abc import Iterator
from datetime import date

import anyio
import anyio.to_thread
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem, UnsupportedMediaTypeProblem
from connexion.json_schema import Draft4RequestValidator
from connexion.lifecycle import ConnexionRequest
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from connexion.operations import AbstractOperation
from connexion.utils import is_null, is_nullable
from connexion.validators import JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator, FormatChecker, ValidationError
from jsonschema.exceptions import best_match
from jsonschema.validators import extend
from starlette.types import ASGIApp, Receive, Scope, Send

from db.recurrence import parse_instant
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


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or parse_instant(value) is not None


MAX_DEPTH = 32  # the contract's bodies are one level deep; 32 leaves room and no recursion risk
# Bodies above this are parsed and validated in a worker thread, off the event loop.
THREAD_THRESHOLD_BYTES = 8 * 1024
UTF8_NAMES = ("utf-8", "utf8")
_PATTERN = Draft4Validator.VALIDATORS["pattern"]


def _pattern_within_length(
    validator: t.Any, pattern: str, instance: t.Any, schema: dict[str, t.Any]
) -> Iterator[ValidationError]:
    # `maxLength` has already refused a longer string; its regex run would be pure cost.
    limit = schema.get("maxLength")
    if isinstance(instance, str) and isinstance(limit, int) and len(instance) > limit:
        return
    yield from _PATTERN(validator, pattern, instance, schema)


_compiled: dict[tuple[int, type], tuple[dict[str, t.Any], t.Any]] = {}
_bounded_classes: dict[type, t.Any] = {}


def compiled(schema: dict[str, t.Any], cls: type = Draft4RequestValidator) -> t.Any:
    """One validator per schema: Connexion would build (and re-resolve) it on every request.
    The schema dicts live as long as the app, so their identity is a stable key."""
    key = (id(schema), cls)
    cached = _compiled.get(key)
    if cached is None or cached[0] is not schema:
        bounded = _bounded_classes.get(cls)
        if bounded is None:
            bounded = _bounded_classes[cls] = extend(  # type: ignore[no-untyped-call]
                cls, {"pattern": _pattern_within_length}
            )
        cached = (schema, bounded(schema, format_checker=FORMAT_CHECKER))
        _compiled[key] = cached
    return cached[1]


def nesting_depth_exceeds(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text nests arrays/objects deeper than `limit`, found without
    recursion: drop escapes and strings, then peel innermost bracket pairs `limit` times."""
    text = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = _STRINGS.sub(b"", text).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"").replace(b"{}", b"")
    return bool(brackets)


_STRINGS = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_limiter: anyio.CapacityLimiter | None = None


def _validation_limiter() -> anyio.CapacityLimiter:
    # Its own threads, so a burst of large bodies does not take the handlers' threads.
    global _limiter
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(2)
    return _limiter


def _reject_constant(name: str) -> t.NoReturn:
    raise ValueError(f"{name} is not a JSON value")


class JsonBodyValidator(JSONRequestBodyValidator):
    # The handler gets the validated object re-encoded, never a second parse of the raw bytes.
    MUTABLE_VALIDATION = True

    def __init__(self, *, required: bool = False, **kwargs: t.Any) -> None:
        # Connexion decides "required body missing" from Content-Length alone, which
        # refuses every chunked body; decide it after reading instead.
        super().__init__(required=False, **kwargs)
        self._body_required = required
        self._checked = False
        self._consumed = False  # whether the client's body messages have been read

    async def _parse(self, stream: t.AsyncGenerator[bytes, None], scope: Scope) -> t.Any:
        if self._encoding.lower() not in UTF8_NAMES:
            raise UnsupportedMediaTypeProblem(
                detail="A JSON body must be UTF-8 (RFC 8259): send no charset or charset=utf-8."
            )
        body = await self._read(stream)
        scope.setdefault("extensions", {})[PARSED_BODY] = body
        return body

    async def _read(self, stream: t.AsyncGenerator[bytes, None]) -> t.Any:
        raw = b"".join([chunk async for chunk in stream])
        self._consumed = True
        if not raw:
            return None
        if len(raw) <= THREAD_THRESHOLD_BYTES:
            return self._parse_and_check(raw)
        return await anyio.to_thread.run_sync(
            self._parse_and_check, raw, limiter=_validation_limiter()
        )

    def _parse_and_check(self, raw: bytes) -> t.Any:
        body = self._decode(raw)
        if body is not None or not self._nullable:
            # A JSON `null` is a body, not a missing one, so the schema judges it.
            self._check_schema(body)
        self._checked = True
        return body

    def _decode(self, raw: bytes) -> t.Any:
        if nesting_depth_exceeds(raw):
            raise BadRequestProblem(
                detail=f"Request body is nested more than {MAX_DEPTH} levels deep."
            )
        try:
            body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            # An unpaired surrogate escape parses, but is not text any database can store.
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except (UnicodeError, LookupError):
            raise BadRequestProblem(detail="Request body is not valid UTF-8 text.") from None
        except RecursionError:
            raise BadRequestProblem(detail="Request body is nested too deeply.") from None
        except ValueError as error:
            raise BadRequestProblem(detail=f"Request body is not valid JSON: {error}") from None
        return body

    def _validate(self, body: t.Any) -> None:
        if body is None and not self._checked:
            if self._body_required:
                raise BadRequestProblem(detail="A request body is required.")
            return
        if not self._checked:
            self._check_schema(body)

    def _insert_body(self, receive: Receive, *, body: t.Any, scope: Scope) -> tuple[Receive, Scope]:
        if body is None and self._consumed:
            # The raw messages were consumed: hand on an empty body, not the client's stream
            # (which, once read, would wait for the disconnect).
            empty = {"type": "http.request", "body": b"", "more_body": False}
            return self._insert_messages(receive, messages=[empty]), scope
        if body is None:
            return receive, scope
        return t.cast(tuple[Receive, Scope], super()._insert_body(receive, body=body, scope=scope))

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


class PrebuiltValidationOperation(RequestValidationOperation):
    """By default, Connexion's validation middleware builds, on every request, two URI
    parsers, a parameter validator and a `MediaTypeDict` of the accepted media types, and
    looks up the operation's body definition three times; we override it because that was
    about a tenth of a GET's CPU (docs/performance.md). What depends only on the operation
    is built once here; the body validator, which holds the request's state, is still built
    per request, with the same arguments. Pinned by: every test in tests/api/ (the same
    answers) and tests/api/test_dispatch.py. Can go when: Connexion builds them per
    operation."""

    def __init__(self, next_app: ASGIApp, **kwargs: t.Any) -> None:
        super().__init__(next_app, **kwargs)
        operation = self._operation
        self._uri_parser = operation._uri_parser_class(
            operation.parameters, operation.body_definition()
        )
        self._parameter_validator = self._validator_map["parameter"](
            operation.parameters,
            uri_parser=self._uri_parser,
            strict_validation=self.strict_validation,
            security_query_params=self.security_query_params,
        )
        self._accepted = MediaTypeDict([(c.lower(), None) for c in operation.consumes])
        self._bodies: dict[str, tuple[t.Any, dict[str, t.Any]] | None] = {}

    def validate_mime_type(self, mime_type: str) -> None:
        if self._operation.consumes and mime_type.lower() not in self._accepted:
            raise UnsupportedMediaTypeProblem(
                detail=f"Invalid Content-type ({mime_type}), expected {self._operation.consumes}"
            )

    def _body_validation(self, mime_type: str) -> tuple[t.Any, dict[str, t.Any]] | None:
        """The body validator's class and arguments for this media type; None when the
        operation has no body schema for it or no validator is registered."""
        if mime_type not in self._bodies:
            self._bodies[mime_type] = self._build_body_validation(mime_type)
        return self._bodies[mime_type]

    def _build_body_validation(self, mime_type: str) -> tuple[t.Any, dict[str, t.Any]] | None:
        operation = self._operation
        schema = operation.body_schema(mime_type)
        validator = self._validator_map["body"].get(mime_type) if schema else None
        if validator is None:
            return None
        arguments = {
            "schema": schema,
            "required": operation.request_body.get("required", False),
            "nullable": is_nullable(operation.body_definition(mime_type)),
            "strict_validation": self.strict_validation,
            "uri_parser": self._uri_parser,
        }
        return validator, arguments

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._parameter_validator.validate(scope)
        mime_type, encoding = self.extract_content_type(scope["headers"])
        self.validate_mime_type(mime_type)
        body = self._body_validation(mime_type)
        if body is not None:
            validator_class, arguments = body
            validator = validator_class(encoding=encoding, **arguments)
            receive, scope = await validator.wrap_receive(receive, scope=scope)
        await self.next_app(scope, receive, send)


class _PrebuiltValidationApi(RequestValidationAPI):
    def make_operation(self, operation: AbstractOperation) -> RequestValidationOperation:
        return PrebuiltValidationOperation(
            self.next_app,
            operation=operation,
            strict_validation=self.strict_validation,
            validator_map=self.validator_map,
        )


class PrebuiltRequestValidation(RequestValidationMiddleware):
    """Connexion's request validation middleware with `PrebuiltValidationOperation`s."""

    api_cls = _PrebuiltValidationApi
