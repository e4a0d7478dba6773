"""One cluster for the whole tier: PostgreSQL, PgBouncer, three instances, HAProxy."""

from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import Engine

from db.engine import make_engine
from tests.support.cluster import Cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture(scope="session")
def balancer_url(cluster: Cluster) -> str:
    """HAProxy's address: what clients use."""
    return cluster.url


@pytest.fixture(scope="session")
def instance_urls(cluster: Cluster) -> list[str]:
    """Each instance's own address, bypassing HAProxy."""
    return cluster.instance_urls


@pytest.fixture(scope="session")
def direct_engine(cluster: Cluster) -> Iterator[Engine]:
    """PostgreSQL itself, past PgBouncer and the instances: what is really stored."""
    engine = make_engine(cluster.direct_url)
    yield engine
    engine.dispose()


def _no_server_errors(response: httpx.Response) -> None:
    assert response.status_code < 500, response.read()


@pytest.fixture
def http() -> Iterator[Callable[[str], httpx.Client]]:
    """An httpx client for a base URL that fails the test on any 5xx."""
    opened: list[httpx.Client] = []

    def make(base_url: str) -> httpx.Client:
        client = httpx.Client(
            base_url=base_url, timeout=30, event_hooks={"response": [_no_server_errors]}
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()
