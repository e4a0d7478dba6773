"""`todo-api serve` as a process: how it starts, and what bounds a hostile client."""

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.tokens import TokenVerifier
from tests.support.api import SECRET
from tests.support.contract import assert_problem
from tests.support.postgres import PostgresServer, free_port
from tests.support.server import ServerProcess

START_WAIT_SECONDS = 1


def _serve(workdir: Path, database_url: str, **variables: str) -> ServerProcess:
    env = {"DATABASE_URL": database_url, "BETTER_AUTH_SECRET": SECRET, **variables}
    return ServerProcess(env, workdir)


def _log_lines(server: ServerProcess) -> list[dict[str, object]]:
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


class TestStartup:
    def test_serves_when_migrations_are_current(self, database_url: str, tmp_path: Path) -> None:
        server = _serve(tmp_path, database_url, DB_MIGRATIONS="check")
        try:
            server.start()
            response = httpx.get(f"{server.base_url}/ready")
        finally:
            server.kill()

        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert "database migrations are up to date" in server.log()

    @pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
    def empty_database(self, request: pytest.FixtureRequest, tmp_path: Path) -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / 'empty.db'}"
        postgres: PostgresServer = request.getfixturevalue("postgres")
        return postgres.create_database(f"empty_{tmp_path.name[-8:].lower()}")

    def test_refuses_a_database_without_migrations(
        self, empty_database: str, tmp_path: Path
    ) -> None:
        server = _serve(tmp_path, empty_database, DB_MIGRATIONS="check")
        server.start(wait=False)
        returncode = server.wait(timeout=30)

        assert returncode == 1
        assert "Traceback" not in server.log()
        [failure] = [line for line in _log_lines(server) if line["level"] == "critical"]
        assert "todo-api migrate" in str(failure["message"])
        assert "DB_MIGRATIONS=upgrade" in str(failure["message"])

    def test_refuses_credentials_with_a_wildcard_origin_in_one_line(
        self, database_url: str, tmp_path: Path
    ) -> None:
        server = _serve(
            tmp_path,
            database_url,
            CORS_ORIGINS="https://app.example.com, *",
            CORS_ALLOW_CREDENTIALS="true",
        )
        server.start(wait=False)
        returncode = server.wait(timeout=30)

        assert returncode == 1
        assert server.log().strip() == (
            "CORS_ALLOW_CREDENTIALS=true cannot be combined with the `*` origin in "
            "CORS_ORIGINS: list the frontend origins one by one."
        )

    def test_waits_for_the_database_then_says_why_it_cannot_start(self, tmp_path: Path) -> None:
        unreachable = f"postgresql://app:hunter2-secret@127.0.0.1:{free_port()}/tasks"
        server = _serve(tmp_path, unreachable, DB_STARTUP_WAIT=str(START_WAIT_SECONDS))
        started = time.monotonic()
        server.start(wait=False)
        returncode = server.wait(timeout=30)
        elapsed = time.monotonic() - started

        log = server.log()
        assert returncode == 1
        assert "Traceback" not in log
        assert "hunter2-secret" not in log
        retries = [line for line in _log_lines(server) if line["level"] == "warning"]
        assert retries
        assert "retrying in" in str(retries[0]["message"])
        [failure] = [line for line in _log_lines(server) if line["level"] == "critical"]
        assert "did not answer within 1 s (DB_STARTUP_WAIT)" in str(failure["message"])
        assert elapsed < 15


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("limits")
    server = _serve(
        workdir,
        f"sqlite:///{workdir / 'tasks.db'}",
        DB_MIGRATIONS="upgrade",
        REQUEST_BODY_TIMEOUT="1",
        KEEP_ALIVE_TIMEOUT="1",
        REQUEST_HEAD_TIMEOUT="1",
        MAX_CONNECTIONS="4",
    )
    server.start()
    yield server
    server.kill()


def _exchange(server: ServerProcess, request: bytes, pause: float = 0.0) -> bytes:
    """Send raw bytes (optionally pausing before the last byte), return the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(request[:-1])
        time.sleep(pause)
        conn.sendall(request[-1:])
        return _read_all(conn)


def _read_all(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


class TestHostileClients:
    def test_oversized_headers_are_refused(self, limited: ServerProcess) -> None:
        response = httpx.get(f"{limited.base_url}/health", headers={"X-Big": "a" * 17_000})

        assert_problem(response, 431)
        assert "16384 bytes" in response.json()["detail"]

    def test_oversized_url_is_refused(self, limited: ServerProcess) -> None:
        response = httpx.get(f"{limited.base_url}/health?pad={'a' * 9_000}")

        assert_problem(response, 414)
        assert httpx.get(f"{limited.base_url}/health").status_code == 200

    def test_a_head_past_both_limits_is_cut_off(self, limited: ServerProcess) -> None:
        head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n"
        answer = _exchange(limited, head, pause=0.3)

        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]

    def test_a_body_that_trickles_too_slowly_gets_408(self, limited: ServerProcess) -> None:
        body = b'{"title": "slow"}'
        token = TokenVerifier(SECRET).mint("someone", 600).encode()
        head = (
            b"POST /api/someone/tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nAuthorization: Bearer " + token + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        answer = _exchange(limited, head + body, pause=2.0)

        status, _, rest = answer.partition(b"\r\n")
        assert status == b"HTTP/1.1 408 Request Timeout", answer
        assert b'"detail": "The request body did not arrive within 1 seconds."' in rest

    def test_an_idle_keep_alive_connection_is_closed(self, limited: ServerProcess) -> None:
        request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        with socket.create_connection(("127.0.0.1", limited.port), timeout=10) as conn:
            conn.sendall(request)
            first = b""
            while not first.endswith(b"}\n"):  # the end of the JSON body
                chunk = conn.recv(65536)
                assert chunk, first  # closed before the answer was complete
                first += chunk
            started = time.monotonic()
            rest = _read_all(conn)  # returns when the server closes the connection
            idle = time.monotonic() - started

        assert first.startswith(b"HTTP/1.1 200")
        assert json.loads(first.partition(b"\r\n\r\n")[2]) == {"status": "ok"}
        assert rest == b""
        assert 0.5 < idle < 5

    def test_connections_beyond_the_limit_get_503(self, limited: ServerProcess) -> None:
        # Requests in flight (their bodies never come) hold the connections: idle ones would
        # be closed to make room (tests/service/test_security.py).
        token = TokenVerifier(SECRET).mint("someone", 600).encode()
        head = (
            b"POST /api/someone/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token + b"\r\nContent-Length: 10\r\n\r\n"
        )
        held = [socket.create_connection(("127.0.0.1", limited.port)) for _ in range(4)]
        try:
            for conn in held:
                conn.sendall(head)
            time.sleep(0.2)
            refused = httpx.get(f"{limited.base_url}/health")
        finally:
            for conn in held:
                conn.close()
        time.sleep(0.2)

        assert refused.status_code == 503
        assert httpx.get(f"{limited.base_url}/health").status_code == 200

    def test_a_head_that_does_not_arrive_in_time_is_cut_off(self, limited: ServerProcess) -> None:
        with socket.create_connection(("127.0.0.1", limited.port), timeout=10) as conn:
            started = time.monotonic()
            conn.sendall(b"GET /health HTTP/1.1\r\n")
            # Trickling the rest does not restart the clock.
            for _ in range(3):
                time.sleep(0.4)
                try:
                    conn.sendall(b"X: y\r\n")
                except OSError:
                    break
            rest = _read_all(conn)
            waited = time.monotonic() - started

        assert rest == b""
        assert 0.8 < waited < 3
