"""The real server: `todo-api serve` in its own process on a free loopback port, its log
captured in a file so a test can read every line it wrote. The one helper every test that
needs a running server uses."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.api import ROOT
from tests.support.postgres import free_port

START_TIMEOUT_SECONDS = 30.0
TODO_API = [sys.executable, "-m", "service.cli"]


class ServerProcess:
    def __init__(
        self,
        env: dict[str, str],
        workdir: Path,
        command: list[str] | None = None,
        *,
        workers: int | None = None,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir  # pytest's temporary folder, which pytest cleans up
        self.log_path = self.workdir / "server.log"
        self.command = command or TODO_API
        self.workers = workers
        # No inherited settings and no .env: the test states every variable it relies on.
        self.env = {"PATH": os.environ["PATH"], "LOG_LEVEL": "info", **env}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True) -> None:
        command = [*self.command, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.workers is not None:
            command += ["--workers", str(self.workers)]
        # Appended: a restarted server's log follows its first run's.
        with self.log_path.open("ab") as log:
            # Its own process group, so that kill() reaches uvicorn's workers too: killed
            # alone, a parent leaves its workers running as orphans.
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait:
            self.wait_until_serving()

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            assert self.process.poll() is None, self.log()
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"the server did not start:\n{self.log()}")

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within the shutdown bound."""
        if self.process is None or self.process.poll() is not None:
            return
        self.terminate()
        try:
            self.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the server and every worker it started."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=15, **kwargs)

    def stored_tasks(self, user_id: str, token: str) -> list[dict[str, Any]]:
        """The user's tasks as the server holds them, read past any client under test."""
        response = httpx.get(
            f"{self.base_url}/api/{user_id}/tasks", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        tasks: list[dict[str, Any]] = response.json()
        return tasks


def todo_api(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TODO_API, *args],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def exited_cleanly(returncode: int) -> bool:
    """uvicorn re-raises SIGTERM after a clean shutdown, so dying by it is a clean exit."""
    return returncode in (0, -signal.SIGTERM)
