"""The change feed never misses a change: two worker processes on PostgreSQL, four writers
and a reader polling the feed; afterwards the reader's mirror is exactly what listTasks says."""

import random
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from db.migrate import upgrade
from service.tokens import TokenVerifier
from tests.support.api import SECRET
from tests.support.postgres import PostgresServer
from tests.support.server import ServerProcess

WRITERS = 4
OPERATIONS_PER_WRITER = 300

pytestmark = pytest.mark.postgresql


@pytest.fixture(scope="module")
def server(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = postgres.create_database(f"feed_{uuid.uuid4().hex[:8]}")
    upgrade(url)
    env = {
        "DATABASE_URL": url,
        "BETTER_AUTH_SECRET": SECRET,
        "WORKERS": "2",
        "LOG_LEVEL": "warning",
        "VALIDATE_RESPONSES": "true",
    }
    process = ServerProcess(env, tmp_path_factory.mktemp("feed"))
    process.start()
    yield process.base_url
    process.stop()


class Shared:
    """The user's task ids as the writers know them, so that they write each other's tasks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids: list[int] = []

    def pick(self, rng: random.Random) -> int | None:
        with self.lock:
            return rng.choice(self.ids) if self.ids else None


def writer(client: httpx.Client, seed: int, shared: Shared, statuses: list[int]) -> None:
    rng = random.Random(seed)
    for step in range(OPERATIONS_PER_WRITER):
        task_id = shared.pick(rng)
        action = rng.choice(["create", "update", "toggle", "delete"]) if task_id else "create"
        if action == "create":
            response = client.post("/tasks", json={"title": f"writer {seed} step {step}"})
            if response.status_code == 201:
                with shared.lock:
                    shared.ids.append(response.json()["id"])
        elif action == "update":
            response = client.patch(
                f"/tasks/{task_id}", json={"priority": rng.choice(["low", "high"])}
            )
        elif action == "toggle":
            response = client.patch(f"/tasks/{task_id}/complete")
        else:
            response = client.delete(f"/tasks/{task_id}")
            with shared.lock:
                if task_id in shared.ids:
                    shared.ids.remove(task_id)
        statuses.append(response.status_code)


def walk(client: httpx.Client, mirror: dict[int, dict[str, Any]], cursor: str | None) -> str:
    while True:
        params: dict[str, str | int] = {"limit": 50}
        if cursor:
            params["cursor"] = cursor
        response = client.get("/tasks/changes", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        for change in page["changes"]:
            if change["deleted"]:
                mirror.pop(change["id"], None)
            else:
                mirror[change["id"]] = change["task"]
        cursor = page["cursor"]
        if not page["has_more"]:
            return str(cursor)


def test_a_reader_of_the_feed_ends_up_with_exactly_the_servers_tasks(server: str) -> None:
    user_id = f"sync-{uuid.uuid4().hex[:12]}"
    headers = {"Authorization": f"Bearer {TokenVerifier(SECRET).mint(user_id, 3600)}"}
    base = f"{server}/api/{user_id}"
    shared, statuses = Shared(), list[int]()
    mirror: dict[int, dict[str, Any]] = {}
    done = threading.Event()
    polls = 0

    def read() -> None:
        nonlocal polls
        with httpx.Client(base_url=base, headers=headers, timeout=15) as client:
            cursor = None
            while not done.is_set():
                cursor = walk(client, mirror, cursor)
                polls += 1
            walk(client, mirror, cursor)

    clients = [httpx.Client(base_url=base, headers=headers, timeout=15) for _ in range(WRITERS)]
    threads = [
        threading.Thread(target=writer, args=(client, seed, shared, statuses))
        for seed, client in enumerate(clients)
    ]
    reader = threading.Thread(target=read)
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    done.set()
    reader.join(timeout=60)
    for client in clients:
        client.close()

    assert len(statuses) == WRITERS * OPERATIONS_PER_WRITER
    # A task another writer deleted meanwhile is a 404; anything else is a bug.
    assert set(statuses) <= {200, 201, 204, 404}, sorted(set(statuses))
    listed = httpx.get(f"{base}/tasks", headers=headers, params={"limit": 500}).json()
    assert {task["id"]: task["version"] for task in listed} == {
        task_id: task["version"] for task_id, task in mirror.items()
    }
    assert mirror == {task["id"]: task for task in listed}
    assert polls > 1, "the reader polled while the writers wrote"
    print(f"{len(statuses)} writes, {len(listed)} tasks left, {polls} feed walks")
