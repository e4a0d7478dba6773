"""Client threads that create, update and toggle tasks over real HTTP, remembering
what the server acknowledged so the database can be checked against it afterwards."""

import random
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine, select

from db.tasks import TASKS, bodies
from service.tokens import TokenVerifier

PAUSE_SECONDS = 0.02  # between one thread's requests: bounded load, not a benchmark


@dataclass
class Outcome:
    operation: str
    started: float
    finished: float
    status: int | None  # None: the client saw a connection error, not an answer
    error: str | None = None  # that error


@dataclass
class Worker:
    base_url: str
    verifier: TokenVerifier
    stop: threading.Event
    user_id: str = field(default_factory=lambda: f"load-{uuid.uuid4().hex[:12]}")
    acknowledged: dict[int, dict[str, Any]] = field(default_factory=dict)
    unanswered_titles: set[str] = field(default_factory=set)
    uncertain: set[int] = field(default_factory=set)
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.token = self.verifier.mint(self.user_id, 600)
        self.random = random.Random(self.user_id)
        self.thread = threading.Thread(target=self.run, name=self.user_id, daemon=True)

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=15) as client:
            while not self.stop.is_set():
                self.step(client)
                time.sleep(PAUSE_SECONDS)

    def step(self, client: httpx.Client) -> None:
        choice = self.random.random()
        if not self.acknowledged or choice < 0.4:
            self.create(client)
        elif choice < 0.7:
            self.update(client, self.random.choice(list(self.acknowledged)))
        else:
            self.toggle(client, self.random.choice(list(self.acknowledged)))

    def create(self, client: httpx.Client) -> None:
        sent = {"title": f"task {uuid.uuid4().hex}", "priority": self.random.choice(PRIORITIES)}
        response = self.send(client, "create", "POST", "", json=sent)
        if response is None:
            self.unanswered_titles.add(sent["title"])
        elif response.status_code == 201:
            body = response.json()
            assert {key: body[key] for key in sent} == sent, body
            self.acknowledged[body["id"]] = body

    def update(self, client: httpx.Client, task_id: int) -> None:
        sent = {"title": f"renamed {uuid.uuid4().hex}", "description": "changed under load"}
        response = self.send(client, "update", "PUT", f"/{task_id}", json=sent)
        self.remember(task_id, response, expected=sent)

    def toggle(self, client: httpx.Client, task_id: int) -> None:
        before = self.acknowledged[task_id]["completed"]
        response = self.send(client, "toggle", "PATCH", f"/{task_id}/complete")
        flipped = {} if task_id in self.uncertain else {"completed": not before}
        self.remember(task_id, response, expected=flipped)

    def remember(
        self, task_id: int, response: httpx.Response | None, expected: dict[str, Any]
    ) -> None:
        if response is None:
            self.uncertain.add(task_id)
        elif response.status_code == 200:
            body = response.json()
            assert {key: body[key] for key in expected} == expected, body
            self.acknowledged[task_id] = body
            self.uncertain.discard(task_id)

    def send(
        self, client: httpx.Client, operation: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = client.request(method, f"/api/{self.user_id}/tasks{path}", **kwargs)
        except httpx.TransportError as error:
            failure = f"{type(error).__name__}: {error}"
            self.outcomes.append(Outcome(operation, started, time.monotonic(), None, failure))
            time.sleep(0.1)
            return None
        self.outcomes.append(Outcome(operation, started, time.monotonic(), response.status_code))
        return response


PRIORITIES = ("low", "medium", "high")


def start(workers: Iterable[Worker]) -> None:
    for worker in workers:
        worker.thread.start()


def join(workers: Iterable[Worker]) -> None:
    for worker in workers:
        worker.thread.join(timeout=30)
        assert not worker.thread.is_alive(), f"{worker.user_id} is stuck"


def all_outcomes(workers: Iterable[Worker]) -> Iterator[Outcome]:
    for worker in workers:
        yield from worker.outcomes


def assert_database_matches(engine: Engine, worker: Worker) -> None:
    """Every acknowledged task is stored exactly as last answered; no other task exists
    unless its create got no answer at all."""
    with engine.connect() as connection:
        query = select(*TASKS.columns).where(TASKS.c.user_id == worker.user_id)
        rows: dict[int, dict[str, Any]] = {
            body["id"]: body for body in bodies(connection, list(connection.execute(query)))
        }
    for task_id, body in worker.acknowledged.items():
        assert task_id in rows, f"task {task_id} was acknowledged but is not stored"
        if task_id not in worker.uncertain:
            assert rows[task_id] == body, (rows[task_id], body)
    for task_id, row in rows.items():
        if task_id not in worker.acknowledged:
            assert row["title"] in worker.unanswered_titles, f"unacknowledged task stored: {row}"
