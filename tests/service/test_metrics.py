"""Prometheus metrics from `todo-api serve --workers 2`: a scripted set of requests, then
one scrape of the metrics listener whose counts must match exactly, whichever worker
answered each request. The API's own port serves no metrics."""

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.tokens import TokenVerifier
from tests.support.api import SECRET
from tests.support.postgres import PostgresServer, free_port
from tests.support.server import ServerProcess, exited_cleanly

pytestmark = pytest.mark.postgresql

POOL_SIZE = 3


@pytest.fixture
def server(postgres: PostgresServer, tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        "DATABASE_URL": postgres.create_database(f"metrics_{uuid.uuid4().hex[:8]}"),
        "BETTER_AUTH_SECRET": SECRET,
        "DB_MIGRATIONS": "upgrade",
        "DB_POOL_SIZE": str(POOL_SIZE),
        "METRICS_PORT": str(free_port()),
        "TMPDIR": str(tmp_path / "tmp"),  # where the metrics directory is made
    }
    (tmp_path / "tmp").mkdir()
    process = ServerProcess(env, tmp_path, workers=2)
    process.start()
    yield process
    process.kill()


def scrape(server: ServerProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    port = server.env["METRICS_PORT"]
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests_counted(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], **labels: str
) -> float:
    return samples.get(("tasks_http_requests_total", frozenset(labels.items())), 0.0)


def test_a_scrape_counts_every_request_of_both_workers(server: ServerProcess) -> None:
    user = "metrics-user"
    headers = {"Authorization": f"Bearer {TokenVerifier(SECRET).mint(user, 600)}"}
    tasks = f"/api/{user}/tasks"

    def send(method: str, path: str, **kwargs: Any) -> httpx.Response:
        # A new connection per request, so the two workers share them.
        return httpx.request(method, server.base_url + path, timeout=10, **kwargs)

    for title in ("one", "two", "three"):
        assert send("POST", tasks, headers=headers, json={"title": title}).status_code == 201
    for _ in range(2):
        assert send("GET", tasks, headers=headers).status_code == 200
    assert send("GET", f"{tasks}/999999", headers=headers).status_code == 404
    assert send("POST", tasks, json={"title": "no token"}).status_code == 401
    assert send("POST", tasks, headers=headers, json={"title": ""}).status_code == 422
    for _ in range(4):
        assert send("GET", "/ready").status_code == 200
    assert send("GET", f"/api/{user}/nowhere", headers=headers).status_code == 404
    assert send("GET", "/metrics").status_code == 404  # not on the public port

    samples = scrape(server)
    expected = {
        ("createTask", "POST", "201"): 3,
        ("listTasks", "GET", "200"): 2,
        ("getTask", "GET", "404"): 1,
        ("createTask", "POST", "401"): 1,
        ("createTask", "POST", "422"): 1,
        ("ready", "GET", "200"): 4,
        ("none", "GET", "404"): 2,
    }
    for (operation, method, status), count in expected.items():
        assert requests_counted(samples, operation=operation, method=method, status=status) == count
    counted = {
        dict(labels)["operation"]
        for (name, labels) in samples
        if name == "tasks_http_requests_total"
    }
    assert counted == {"createTask", "listTasks", "getTask", "ready", "health", "none"}
    latency = (
        "tasks_http_request_duration_seconds_count",
        frozenset({("operation", "createTask")}),
    )
    assert samples[latency] == 5
    assert samples[("tasks_http_requests_in_flight", frozenset())] == 0
    assert samples[("tasks_db_pool_size", frozenset())] == 2 * POOL_SIZE
    assert samples[("tasks_db_pool_checked_out", frozenset())] == 0
    assert samples[("tasks_db_pool_timeouts_total", frozenset())] == 0
    assert samples[("tasks_jwks_fetches_total", frozenset())] == 0
    for counter in (
        "idempotency_replays",
        "idempotency_conflicts",
        "change_feed_pages",
        "quota_refusals",
    ):
        assert samples[(f"tasks_{counter}_total", frozenset())] == 0


def test_each_serve_keeps_its_metrics_in_a_fresh_directory_removed_at_exit(
    server: ServerProcess,
) -> None:
    temporary = Path(server.env["TMPDIR"])
    [directory] = temporary.glob("todo-api-metrics-*")
    assert any(directory.glob("*.db"))  # the workers' values
    assert f"Metrics:         http://127.0.0.1:{server.env['METRICS_PORT']}/metrics" in server.log()
    server.terminate()
    assert exited_cleanly(server.wait(timeout=30))
    assert not directory.exists()


def test_the_command_line_does_not_import_the_metrics_early() -> None:
    # prometheus-client picks its storage at import: before `todo-api serve` sets it up,
    # nothing may import it (or the single-worker server would count in memory, unseen).
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import service.cli, sys; print('prometheus_client' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False"
