"""Checks a response body against the contract's own schemas, independently of the app."""

from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator

from tests.support.api import CONTRACT

SPEC: dict[str, Any] = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))


def assert_conforms(body: Any, schema: str | dict[str, Any]) -> None:
    root = {"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else schema
    OAS30Validator(
        {**root, "components": SPEC["components"]}, format_checker=OAS30Validator.FORMAT_CHECKER
    ).validate(body)


def assert_task(body: Any) -> None:
    assert_conforms(body, "Task")


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """An error: the status, a problem+json body with a readable `detail`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert_conforms(body, "Error")
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body
