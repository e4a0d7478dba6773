"""A signed-in user's view of the API, and the constants the tiers share."""

from pathlib import Path
from typing import Any

import httpx
from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent.parent
CONTRACT = ROOT / "openapi" / "tasks.yaml"
README = ROOT / "README.md"
# Screenshots and other evidence a run leaves behind for people to look at (git-ignored).
ARTIFACTS = ROOT / "tests" / "artifacts"
# Long enough for HS512 (RFC 7518 §3.2 wants a key as long as the hash).
SECRET = "test-secret-" + "0123456789abcdef" * 4


class Api:
    """A signed-in user's view of the API: paths and the bearer header filled in."""

    def __init__(self, client: TestClient, user_id: str, token: str) -> None:
        self.client = client
        self.user_id = user_id
        self.headers = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str = "", **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        url = f"/api/{self.user_id}/tasks{path}"
        response: httpx.Response = self.client.request(method, url, headers=headers, **kwargs)
        return response

    def create(self, **fields: Any) -> dict[str, Any]:
        response = self.request("POST", json={"title": "A task", **fields})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def get(self, task_id: int) -> httpx.Response:
        return self.request("GET", f"/{task_id}")

    def list(self, **params: Any) -> httpx.Response:
        return self.request("GET", params=params)
