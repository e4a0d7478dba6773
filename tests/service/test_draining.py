"""After SIGTERM, with DRAIN_SECONDS set, a server leaves a balancer's rotation before it
closes: /ready answers 503 while the API still answers, then it shuts down cleanly."""

import time
from pathlib import Path

import httpx
import pytest

from service.tokens import TokenVerifier
from tests.support.api import SECRET
from tests.support.server import ServerProcess, exited_cleanly

DRAIN_SECONDS = 2.0


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_then_shuts_down(tmp_path: Path, workers: int) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'tasks.db'}",
        "BETTER_AUTH_SECRET": SECRET,
        "DB_MIGRATIONS": "upgrade",
        "DRAIN_SECONDS": str(DRAIN_SECONDS),
    }
    server = ServerProcess(env, tmp_path, workers=workers)
    try:
        server.start()
        headers = {"Authorization": f"Bearer {TokenVerifier(SECRET).mint('drainer', 600)}"}
        tasks = f"{server.base_url}/api/drainer/tasks"
        assert httpx.get(f"{server.base_url}/ready").status_code == 200

        signalled = time.monotonic()
        server.terminate()
        time.sleep(0.8)  # the supervisor passes SIGTERM on within half a second
        ready = httpx.get(f"{server.base_url}/ready")
        created = httpx.post(tasks, headers=headers, json={"title": "during the drain"})
        returncode = server.wait(timeout=30)
        exited = time.monotonic()
    finally:
        server.kill()

    assert ready.status_code == 503
    assert ready.headers["retry-after"]
    assert ready.json()["detail"] == "The instance is shutting down."
    assert created.status_code == 201, created.text
    assert exited_cleanly(returncode), server.log()
    assert exited - signalled >= DRAIN_SECONDS
