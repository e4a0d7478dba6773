"""The API as its users run it: `todo-api serve` (real uvicorn) on a free loopback port, for
the generated clients and the browser, which cannot use an in-process ASGI client."""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.postgres import free_port

STARTUP_SECONDS = 30


class LiveServer:
    def __init__(self, database_url: str, secret: str, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BETTER_AUTH_SECRET": secret,
            # Every answer the clients see is checked against the contract, as in the suite.
            "VALIDATE_RESPONSES": "true",
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "handlers.cli", "serve", "--host", "127.0.0.1"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_up()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def stored_tasks(self, user_id: str, token: str) -> list[dict[str, Any]]:
        """The user's tasks as the server holds them, read past any client under test."""
        response = httpx.get(
            f"{self.url}/api/{user_id}/tasks", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        tasks: list[dict[str, Any]] = response.json()
        return tasks

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"The server exited:\n{self.log_path.read_text()}")
            try:
                status = httpx.get(f"{self.url}/health", timeout=1).status_code
            except httpx.TransportError:
                status = None
            if status == 200:
                return
            if status is not None and status >= 500:
                raise RuntimeError(f"The server answers {status}:\n{self.log_path.read_text()}")
            time.sleep(0.1)
        raise RuntimeError(f"The server did not answer within {STARTUP_SECONDS} s")
