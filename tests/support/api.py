"""A signed-in user's view of the API, and the constants the tiers share."""

from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent.parent
CONTRACT = ROOT / "openapi" / "tasks.yaml"
README = ROOT / "README.md"
# Screenshots and other evidence a run leaves behind for people to look at (git-ignored).
ARTIFACTS = ROOT / "tests" / "artifacts"
# Long enough for HS512 (RFC 7518 §3.2 wants a key as long as the hash).
SECRET = "test-secret-" + "0123456789abcdef" * 4


class Api:
    """A signed-in user's view of the API: paths and the bearer header filled in. The client
    is the in-process TestClient or an httpx client of a real server."""

    def __init__(self, client: httpx.Client, user_id: str, token: str) -> None:
        self.client = client
        self.user_id = user_id
        self.headers = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str = "", **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        url = f"/api/{self.user_id}/tasks{path}"
        response: httpx.Response = self.client.request(method, url, headers=headers, **kwargs)
        return response

    def tags(self, method: str = "GET", path: str = "", **kwargs: Any) -> httpx.Response:
        """A request to the user's `/tags` collection (or to `path` under it)."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        url = f"/api/{self.user_id}/tags{path}"
        response: httpx.Response = self.client.request(method, url, headers=headers, **kwargs)
        return response

    def complete(self, task_id: int, **body: Any) -> dict[str, Any]:
        response = self.request("PATCH", f"/{task_id}/complete", json=body or None)
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        return task

    def all(self) -> list[dict[str, Any]]:
        """Every task of the user, oldest first."""
        response = self.list(sort="created", order="asc", limit=500)
        assert response.status_code == 200, response.text
        tasks: list[dict[str, Any]] = response.json()
        return tasks

    def create(self, **fields: Any) -> dict[str, Any]:
        response = self.request("POST", json={"title": "A task", **fields})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def get(self, task_id: int) -> httpx.Response:
        return self.request("GET", f"/{task_id}")

    def list(self, **params: Any) -> httpx.Response:
        return self.request("GET", params=params)
