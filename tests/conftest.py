"""Fixtures: one app per database engine for the whole session, a fresh user per test."""

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from connexion import AsyncApp
from sqlalchemy import Engine
from starlette.testclient import TestClient

from db.engine import make_engine
from db.migrate import upgrade
from handlers.app import create_app
from handlers.auth import TokenVerifier
from handlers.config import Settings
from tests.live_server import LiveServer
from tests.postgres import PostgresServer

# Long enough for HS512 (RFC 7518 §3.2 wants a key as long as the hash).
SECRET = "test-secret-" + "0123456789abcdef" * 4
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'tasks.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database("tasks")
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        better_auth_secret=SECRET,
        validate_responses=True,
        _env_file=None,
    )


@pytest.fixture(scope="session")
def app(settings: Settings) -> Iterator[AsyncApp]:
    engine = make_engine(settings.database_url, pool_size=20, max_overflow=10)
    yield create_app(settings, engine=engine)
    engine.dispose()


def _no_server_errors(response: httpx.Response) -> None:
    # No client input may produce a 500; a 503 is a database outage, not a bug.
    assert response.status_code < 500 or response.status_code == 503, response.read()


@pytest.fixture(scope="session")
def live_server(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    server = LiveServer(settings.database_url, SECRET, tmp_path_factory.mktemp("live") / "log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def client(app: AsyncApp) -> Iterator[TestClient]:
    with app.test_client() as test_client:
        test_client.event_hooks["response"].append(_no_server_errors)
        yield test_client


@pytest.fixture
def token_for() -> Callable[..., str]:
    verifier = TokenVerifier(SECRET)

    def mint(user_id: str, ttl: int = 600) -> str:
        return verifier.mint(user_id, ttl)

    return mint


@pytest.fixture
def user_id() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


class Api:
    """A signed-in user's view of the API: paths and the bearer header filled in."""

    def __init__(self, client: TestClient, user_id: str, token: str) -> None:
        self.client = client
        self.user_id = user_id
        self.headers = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str = "", **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        url = f"/api/{self.user_id}/tasks{path}"
        response: httpx.Response = self.client.request(method, url, headers=headers, **kwargs)
        return response

    def create(self, **fields: Any) -> dict[str, Any]:
        response = self.request("POST", json={"title": "A task", **fields})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def get(self, task_id: int) -> httpx.Response:
        return self.request("GET", f"/{task_id}")

    def list(self, **params: Any) -> httpx.Response:
        return self.request("GET", params=params)


@pytest.fixture
def api(client: TestClient, user_id: str, token_for: Callable[..., str]) -> Api:
    return Api(client, user_id, token_for(user_id))


@pytest.fixture
def other_api(client: TestClient, token_for: Callable[..., str]) -> Api:
    other = f"user-{uuid.uuid4().hex[:12]}"
    return Api(client, other, token_for(other))


ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "openapi" / "tasks.yaml"
# Screenshots and other evidence a run leaves behind for people to look at (git-ignored).
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def client_with(engine: Engine) -> Callable[..., TestClient]:
    """A client of a fresh app on the session's database, built from the given settings."""

    def make(**settings: Any) -> TestClient:
        url = engine.url.render_as_string(hide_password=False)
        app = create_app(Settings(database_url=url, _env_file=None, **settings), engine=engine)
        client: TestClient = app.test_client()
        client.event_hooks["response"].append(_no_server_errors)
        return client

    return make


CASE_COUNTS = pytest.StashKey[Counter[str]]()


@pytest.fixture(scope="session")
def case_counts(request: pytest.FixtureRequest) -> Counter[str]:
    """Generated cases per backend and Schemathesis phase, printed after the run."""
    return request.config.stash.setdefault(CASE_COUNTS, Counter())


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    counts = config.stash.get(CASE_COUNTS, None)
    if counts:
        terminalreporter.section("contract fuzzing: generated cases")
        for name, count in sorted(counts.items()):
            terminalreporter.write_line(f"{name:<32} {count:>7}")
