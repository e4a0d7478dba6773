"""The real server under load on a real PostgreSQL: the database stops and comes back,
the process gets SIGTERM. Nothing acknowledged may be lost, nothing unacknowledged kept."""

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from db.engine import make_engine
from service.tokens import TokenVerifier
from tests.support import load
from tests.support.api import SECRET
from tests.support.postgres import PostgresServer
from tests.support.server import ServerProcess, exited_cleanly

pytestmark = pytest.mark.postgresql

THREADS = 6
WARM_UP_SECONDS = 3.0
OUTAGE_SECONDS = 4.0
AFTER_RECOVERY_SECONDS = 5.0
RECOVERY_LIMIT_SECONDS = 10.0
SLOW_TITLE = "sent slowly during shutdown"


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    # Its own server: this module stops and starts it, which no other test expects.
    server = PostgresServer()
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def database(own_postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    return own_postgres.create_database(request.node.name.replace("test_", "").lower())


@pytest.fixture
def database_engine(database: str) -> Iterator[Engine]:
    engine = make_engine(database)
    yield engine
    engine.dispose()


@pytest.fixture
def server(database: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        {
            "DATABASE_URL": database,
            "BETTER_AUTH_SECRET": SECRET,
            "DB_MIGRATIONS": "upgrade",
            "DB_POOL_SIZE": "4",
            "DB_MAX_OVERFLOW": "2",
            "DB_CONNECT_TIMEOUT": "2",
            "DB_STATEMENT_TIMEOUT": "5",
            "VALIDATE_RESPONSES": "true",
        },
        tmp_path,
    )
    process.start()
    yield process
    process.kill()


@pytest.fixture
def workers(server: ServerProcess) -> Iterator[list[load.Worker]]:
    stop = threading.Event()
    verifier = TokenVerifier(SECRET)
    crew = [load.Worker(server.base_url, verifier, stop) for _ in range(THREADS)]
    yield crew
    stop.set()
    load.join(crew)


@dataclass
class Probe:
    """Polls /ready in the background, recording (started, finished, status)."""

    base_url: str
    stop: threading.Event
    results: list[tuple[float, float, int | None]]

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=15) as client:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    status: int | None = client.get("/ready").status_code
                except httpx.TransportError:
                    status = None
                self.results.append((started, time.monotonic(), status))
                time.sleep(0.2)


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic()


def test_database_outage_answers_503_then_recovers_without_losing_anything(
    own_postgres: PostgresServer,
    server: ServerProcess,
    workers: list[load.Worker],
    database_engine: Engine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    probe = Probe(server.base_url, workers[0].stop, [])
    threading.Thread(target=probe.run, daemon=True).start()
    load.start(workers)
    time.sleep(WARM_UP_SECONDS)

    own_postgres.stop("fast")
    down = time.monotonic()
    time.sleep(OUTAGE_SECONDS)
    restarting = time.monotonic()
    own_postgres.start()
    up = time.monotonic()
    recovered = wait_for(
        lambda: any(o.started >= up and o.status in (200, 201) for o in load.all_outcomes(workers)),
        RECOVERY_LIMIT_SECONDS,
    )
    time.sleep(AFTER_RECOVERY_SECONDS)
    workers[0].stop.set()
    load.join(workers)

    outcomes = list(load.all_outcomes(workers))
    statuses = Counter(o.status for o in outcomes)
    during = Counter(o.status for o in outcomes if o.started >= down and o.finished <= restarting)
    settled = Counter(o.status for o in outcomes if o.started >= recovered + 1.0)
    ready_during = {
        status for started, done, status in probe.results if started >= down and done <= restarting
    }
    with capsys.disabled():
        print(
            f"\n[fault test] requests={len(outcomes)} "
            f"2xx={statuses[200] + statuses[201]} 503={statuses[503]} "
            f"connection_errors={statuses[None]} other={_others(statuses)} "
            f"outage={restarting - down:.1f}s requests_during_outage={sum(during.values())} "
            f"recovery_time={recovered - up:.2f}s (after PostgreSQL accepted connections) "
            f"ready_during_outage={sorted(ready_during, key=str)}"
        )

    assert set(statuses) <= {200, 201, 503}, statuses
    assert set(during) == {503}, during
    assert settled, "no request after recovery"
    assert set(settled) <= {200, 201}, settled
    assert ready_during == {503}
    assert httpx.get(f"{server.base_url}/ready").status_code == 200
    for worker in workers:
        load.assert_database_matches(database_engine, worker)
    _assert_clean_log(server.log(), workers)


def test_sigterm_finishes_in_flight_requests_and_exits_cleanly(
    server: ServerProcess,
    workers: list[load.Worker],
    database_engine: Engine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    load.start(workers)
    time.sleep(2.0)
    slow = SlowCreate(server.base_url, workers[0])
    slow.thread.start()
    time.sleep(0.5)  # its headers and first bytes are in: the request is in flight

    signalled = time.monotonic()
    server.terminate()
    returncode = server.wait(timeout=30)
    exited = time.monotonic()
    slow.thread.join(timeout=15)
    workers[0].stop.set()
    load.join(workers)
    slow.record_in(workers[0])

    outcomes = list(load.all_outcomes(workers))
    statuses = Counter(o.status for o in outcomes)
    answered_after = sum(1 for o in outcomes if o.finished >= signalled and o.status is not None)
    with capsys.disabled():
        print(
            f"\n[shutdown test] requests={len(outcomes)} "
            f"2xx={statuses[200] + statuses[201]} 503={statuses[503]} "
            f"connection_errors={statuses[None]} other={_others(statuses)} "
            f"answered_after_sigterm={answered_after} exit={returncode} "
            f"shutdown_time={exited - signalled:.2f}s slow_request={slow.status}"
        )

    assert exited_cleanly(returncode), server.log()
    assert set(statuses) <= {200, 201, None}, statuses
    assert slow.status == 201, (slow.status, slow.body)
    for worker in workers:
        load.assert_database_matches(database_engine, worker)
    log = server.log()
    assert "database connections closed" in log
    _assert_clean_log(log, workers)


class SlowCreate:
    """A create whose body trickles in over a second, so it is in flight at SIGTERM."""

    def __init__(self, base_url: str, worker: load.Worker) -> None:
        self.url = f"{base_url}/api/{worker.user_id}/tasks"
        self.headers = {"Authorization": f"Bearer {worker.token}"}
        self.status: int | None = None
        self.body: dict[str, Any] = {}
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        try:
            response = httpx.post(
                self.url, headers=self.headers, content=self.trickle(), timeout=15
            )
        except httpx.TransportError:
            return
        self.status = response.status_code
        self.body = response.json()

    @staticmethod
    def trickle() -> Iterator[bytes]:
        for piece in (b'{"title": ', f'"{SLOW_TITLE}'.encode(), b'"}'):
            yield piece
            time.sleep(0.5)

    def record_in(self, worker: load.Worker) -> None:
        """Its task belongs to the worker's user: account for it like the worker's own."""
        if self.status == 201:
            worker.acknowledged[self.body["id"]] = self.body
        else:
            worker.unanswered_titles.add(SLOW_TITLE)


def _others(statuses: Counter[int | None]) -> dict[int | None, int]:
    return {status: n for status, n in statuses.items() if status not in (200, 201, 503, None)}


def _assert_clean_log(log: str, workers: list[load.Worker]) -> None:
    assert "Traceback" not in log, log
    assert SECRET not in log
    for worker in workers:
        assert worker.token not in log
    assert '"status": 500' not in log
