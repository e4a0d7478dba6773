"""Fixtures: one app per database engine for the whole session, a fresh user per test."""

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from connexion import AsyncApp
from sqlalchemy import Engine
from starlette.testclient import TestClient

from db.engine import make_engine
from db.migrate import upgrade
from service.app import create_app
from service.settings import Settings
from service.tokens import TokenVerifier
from tests.support.api import SECRET, Api
from tests.support.postgres import PostgresServer
from tests.support.server import ServerProcess

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
) -> Iterator[ServerProcess]:
    env = {
        "DATABASE_URL": settings.database_url,
        "BETTER_AUTH_SECRET": SECRET,
        # Every answer the clients see is checked against the contract, as in the suite.
        "VALIDATE_RESPONSES": "true",
    }
    server = ServerProcess(env, tmp_path_factory.mktemp("live"))
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


@pytest.fixture
def api(client: TestClient, user_id: str, token_for: Callable[..., str]) -> Api:
    return Api(client, user_id, token_for(user_id))


@pytest.fixture
def other_api(client: TestClient, token_for: Callable[..., str]) -> Api:
    other = f"user-{uuid.uuid4().hex[:12]}"
    return Api(client, other, token_for(other))


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
