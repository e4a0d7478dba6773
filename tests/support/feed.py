"""Feed completeness under concurrency: writers on one or several servers, one reader polling
the change feed; afterwards the reader's mirror must equal what listTasks returns."""

import random
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx

OPERATIONS_PER_WRITER = 300


class Shared:
    """The user's task ids as the writers know them, so that they write each other's tasks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids: list[int] = []

    def pick(self, rng: random.Random) -> int | None:
        with self.lock:
            return rng.choice(self.ids) if self.ids else None


def writer(
    client: httpx.Client, seed: int, shared: Shared, statuses: list[int], operations: int
) -> None:
    rng = random.Random(seed)
    for step in range(operations):
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
        apply_page(mirror, page)
        cursor = page["cursor"]
        if not page["has_more"]:
            return str(cursor)


def apply_page(mirror: dict[int, dict[str, Any]], page: dict[str, Any]) -> None:
    """What a client does with a page: deleted tasks leave its copy, others replace theirs."""
    for change in page["changes"]:
        if change["deleted"]:
            mirror.pop(change["id"], None)
        else:
            mirror[change["id"]] = change["task"]


@dataclass
class FeedRun:
    statuses: list[int] = field(default_factory=list)
    mirror: dict[int, dict[str, Any]] = field(default_factory=dict)
    listed: list[dict[str, Any]] = field(default_factory=list)
    polls: int = 0


def run_writers_and_reader(
    writer_bases: list[str],
    reader_base: str,
    headers: dict[str, str],
    operations: int = OPERATIONS_PER_WRITER,
) -> FeedRun:
    """One writer thread per base URL (a user's `/api/{user_id}`), all writing the same
    user's tasks, while a reader walks the feed through `reader_base` until they are done."""
    run = FeedRun()
    shared = Shared()
    done = threading.Event()

    def read() -> None:
        with httpx.Client(base_url=reader_base, headers=headers, timeout=15) as client:
            cursor = None
            while not done.is_set():
                cursor = walk(client, run.mirror, cursor)
                run.polls += 1
            walk(client, run.mirror, cursor)

    clients = [httpx.Client(base_url=base, headers=headers, timeout=15) for base in writer_bases]
    threads = [
        threading.Thread(target=writer, args=(client, seed, shared, run.statuses, operations))
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
    listed = httpx.get(f"{reader_base}/tasks", headers=headers, params={"limit": 500})
    assert listed.status_code == 200, listed.text
    run.listed = listed.json()
    return run


def assert_mirror_is_the_server(run: FeedRun, writers: int, operations: int) -> None:
    assert len(run.statuses) == writers * operations
    # A task another writer deleted meanwhile is a 404; anything else is a bug.
    assert set(run.statuses) <= {200, 201, 204, 404}, sorted(set(run.statuses))
    assert {task["id"]: task["version"] for task in run.listed} == {
        task_id: task["version"] for task_id, task in run.mirror.items()
    }
    assert run.mirror == {task["id"]: task for task in run.listed}
    assert run.polls > 1, "the reader polled while the writers wrote"
