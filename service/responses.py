"""Successful responses. Every operation also declares `application/problem+json`
for its errors, so a handler names the media type of its success explicitly."""

from typing import Any

JSON = "application/json"


def json_body(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> tuple[Any, int, dict[str, str]]:
    return body, status, {"Content-Type": JSON, **(headers or {})}
