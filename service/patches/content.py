"""Corrections to how Connexion reads request bodies and serves the contract."""

import json
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

JSON_TYPE = b"application/json"


class DefaultContentType:
    """By default, Connexion validates a body sent without `Content-Type` as JSON but then
    hands the handler raw bytes (a 500); we override it by naming the type up front, so the
    validator and the handler agree.
    Pinned by: tests/api/test_operations.py (a JSON body without Content-Type is taken).
    Can go when: Connexion decodes such a body the way it validated it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "content-type" not in Headers(scope=scope):
            scope = {**scope, "headers": [*scope["headers"], (b"content-type", JSON_TYPE)]}
        await self.app(scope, receive, send)


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
