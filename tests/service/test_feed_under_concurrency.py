"""The change feed never misses a change: two worker processes on PostgreSQL, four writers
and a reader polling the feed; afterwards the reader's mirror is exactly what listTasks says."""

import uuid
from collections.abc import Iterator

import pytest

from db.migrate import upgrade
from service.tokens import TokenVerifier
from tests.support.api import SECRET
from tests.support.feed import (
    OPERATIONS_PER_WRITER,
    assert_mirror_is_the_server,
    run_writers_and_reader,
)
from tests.support.postgres import PostgresServer
from tests.support.server import ServerProcess

WRITERS = 4

pytestmark = pytest.mark.postgresql


@pytest.fixture(scope="module")
def server(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = postgres.create_database(f"feed_{uuid.uuid4().hex[:8]}")
    upgrade(url)
    env = {
        "DATABASE_URL": url,
        "BETTER_AUTH_SECRET": SECRET,
        "WORKERS": "2",
        "LOG_LEVEL": "warning",
        "VALIDATE_RESPONSES": "true",
    }
    process = ServerProcess(env, tmp_path_factory.mktemp("feed"))
    process.start()
    yield process.base_url
    process.stop()


def test_a_reader_of_the_feed_ends_up_with_exactly_the_servers_tasks(server: str) -> None:
    user_id = f"sync-{uuid.uuid4().hex[:12]}"
    headers = {"Authorization": f"Bearer {TokenVerifier(SECRET).mint(user_id, 3600)}"}
    base = f"{server}/api/{user_id}"

    run = run_writers_and_reader([base] * WRITERS, base, headers)

    assert_mirror_is_the_server(run, WRITERS, OPERATIONS_PER_WRITER)
    print(f"{len(run.statuses)} writes, {len(run.listed)} tasks left, {run.polls} feed walks")
