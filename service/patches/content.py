"""Corrections to how Connexion reads request bodies and serves the contract."""

import json
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

JSON_TYPE = b"application/json"


class DefaultContentType:
    """By default, Connexion validates a body sent without `Content-Type` as JSON but then
    hands the handler raw bytes (a 500); we override it by naming the type up front, so the
    validator and the handler agree.
    By default, it also looks its body validator up by the media type exactly as sent, so
    `Application/json` skipped validation and reached the handler as bytes (a 500), and it
    reads `charset` only when written without a space after the `;`; we override both by
    rewriting the header to its canonical form: the media type in lower case and, for JSON,
    only the charset (lower case, unquoted), which `JsonBodyValidator` then judges (RFC 9110
    §8.3.1: type, subtype and parameter names are case-insensitive).
    Pinned by: tests/api/test_operations.py (a JSON body without Content-Type is taken),
    tests/api/test_media_types.py, tests/service/test_security.py.
    Can go when: Connexion decodes such a body the way it validated it and compares media
    types case-insensitively."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            sent = [value for name, value in scope["headers"] if name.lower() == b"content-type"]
            canonical = canonical_content_type(sent[0]) if sent else JSON_TYPE
            headers = [(n, v) for n, v in scope["headers"] if n.lower() != b"content-type"]
            scope = {**scope, "headers": [*headers, (b"content-type", canonical)]}
        await self.app(scope, receive, send)


def canonical_content_type(value: bytes) -> bytes:
    """`Application/JSON; Charset="UTF-8"` -> `application/json;charset=utf-8`."""
    media_type, *parameters = value.decode("latin-1").split(";")
    media_type = media_type.strip().lower()
    if media_type != JSON_TYPE.decode():
        return ";".join([media_type, *(p.strip() for p in parameters)]).encode("latin-1")
    charsets = [
        raw.strip().strip('"').lower()
        for name, _, raw in (parameter.partition("=") for parameter in parameters)
        if name.strip().lower() == "charset"
    ]
    charset = f";charset={charsets[-1]}" if charsets else ""
    return f"{media_type}{charset}".encode("latin-1")


class ServeContract:
    """By default, Connexion serves `/api/openapi.json` with every `$ref` inlined, which makes
    generated clients lose their type names (connexion #2127); we override it by serving the
    file as written, as JSON and as YAML.
    Pinned by: tests/consumers/test_python_client.py and test_typescript_client.py (named
    types), tests/service/test_wheel.py. Can go when: #2127's option (PR #2128) is released."""

    def __init__(
        self, app: ASGIApp, contract: dict[str, Any], text: str, url_prefix: str = "/api"
    ) -> None:
        self.app = app
        self.routes = {
            f"{url_prefix}/openapi.json": Response(
                json.dumps(contract), media_type="application/json"
            ),
            f"{url_prefix}/openapi.yaml": Response(text, media_type="text/yaml"),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if response is not None and scope["method"] in ("GET", "HEAD"):
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
