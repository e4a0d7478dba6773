"""Tokens and the operations every auth test walks through."""

import base64
import json
import time
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from tests.support.api import SECRET
from tests.support.contract import assert_problem

OPERATIONS = [
    pytest.param("GET", "", id="listTasks"),
    pytest.param("POST", "", id="createTask"),
    pytest.param("GET", "/1", id="getTask"),
    pytest.param("PUT", "/1", id="updateTask"),
    pytest.param("DELETE", "/1", id="deleteTask"),
    pytest.param("PATCH", "/1/complete", id="completeTask"),
]


def sign(claims: dict[str, Any], key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def valid_claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": user_id, "iat": now, "exp": now + 300, **overrides}


def call(
    client: TestClient, user_id: str, token: str | None, method: str = "GET", path: str = ""
) -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return client.request(method, f"/api/{user_id}/tasks{path}", headers=headers, json=None)


def assert_unauthorized(response: Any, token_presented: bool = True) -> None:
    assert_problem(response, 401)
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    if token_presented:
        assert 'error="invalid_token"' in challenge
