"""No instance keeps anything the others need: concurrent writes spread straight over the
three instances (bypassing HAProxy) behave as if one process served them all: toggles,
creates, one Idempotency-Key, If-Match writes, and the change feed."""

import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import Engine, text

from service.tokens import TokenVerifier
from tests.support.api import SECRET, Api
from tests.support.feed import assert_mirror_is_the_server, run_writers_and_reader

pytestmark = pytest.mark.cluster

TOGGLES = 31
CREATES = 45
IDEMPOTENT_RETRIES = 12
CONDITIONAL_WRITES = 20
FEED_OPERATIONS = 150


@pytest.fixture
def apis(http: Callable[[str], httpx.Client], instance_urls: list[str]) -> list[Api]:
    """One user's view through each instance."""
    user_id = f"user-{uuid.uuid4().hex[:12]}"
    token = TokenVerifier(SECRET).mint(user_id, 600)
    return [Api(http(url), user_id, token) for url in instance_urls]


def spread(
    apis: list[Api], count: int, call: Callable[[Api, int], httpx.Response]
) -> list[httpx.Response]:
    """`count` calls at once, the n-th through instance n mod 3."""
    with ThreadPoolExecutor(max_workers=12) as pool:
        return list(pool.map(lambda n: call(apis[n % len(apis)], n), range(count)))


def test_concurrent_toggles_over_all_instances_are_atomic(apis: list[Api]) -> None:
    task = apis[0].create(title="Flip me")
    answers = spread(apis, TOGGLES, lambda api, _: api.request("PATCH", f"/{task['id']}/complete"))

    assert {response.status_code for response in answers} == {200}
    # Each toggle saw the state the previous one left: the answers alternate, so half
    # (rounded up) say completed, and the last state is the odd count's.
    states = Counter(response.json()["completed"] for response in answers)
    assert states == Counter({True: TOGGLES // 2 + 1, False: TOGGLES // 2})
    for api in apis:
        assert api.get(task["id"]).json()["completed"] is True


def test_concurrent_creates_over_all_instances_are_all_kept_once(apis: list[Api]) -> None:
    answers = spread(apis, CREATES, lambda api, n: api.request("POST", json={"title": f"task {n}"}))

    assert {response.status_code for response in answers} == {201}
    ids = [response.json()["id"] for response in answers]
    assert len(set(ids)) == CREATES
    for api in apis:  # every instance lists the same tasks
        listed = api.list(limit=500)
        assert listed.headers["x-total-count"] == str(CREATES)
        assert sorted(task["title"] for task in listed.json()) == sorted(
            f"task {n}" for n in range(CREATES)
        )
        assert {task["id"] for task in listed.json()} == set(ids)


def test_one_idempotency_key_sent_to_every_instance_creates_one_task(
    apis: list[Api], direct_engine: Engine
) -> None:
    key = f"retry-{uuid.uuid4().hex}"
    answers = spread(
        apis,
        IDEMPOTENT_RETRIES,
        lambda api, _: api.request(
            "POST", json={"title": "Pay rent"}, headers={"Idempotency-Key": key}
        ),
    )

    assert {response.status_code for response in answers} <= {201, 409}
    created = {response.json()["id"] for response in answers if response.status_code == 201}
    assert len(created) == 1
    with direct_engine.connect() as connection:
        stored = connection.execute(
            text("SELECT id FROM tasks WHERE user_id = :user"), {"user": apis[0].user_id}
        ).scalars()
        assert list(stored) == list(created)


def test_if_match_writes_over_all_instances_let_exactly_one_through(apis: list[Api]) -> None:
    task = apis[0].create(title="Contended")
    etag = apis[0].get(task["id"]).headers["etag"]
    answers = spread(
        apis,
        CONDITIONAL_WRITES,
        lambda api, n: api.request(
            "PUT", f"/{task['id']}", json={"title": f"writer {n}"}, headers={"If-Match": etag}
        ),
    )

    statuses = Counter(response.status_code for response in answers)
    assert statuses == Counter({200: 1, 412: CONDITIONAL_WRITES - 1})
    (winner,) = (response.json() for response in answers if response.status_code == 200)
    for api in apis:
        assert api.get(task["id"]).json() == winner


def test_the_feed_read_through_one_instance_sees_every_write_made_on_all(
    instance_urls: list[str],
) -> None:
    user_id = f"sync-{uuid.uuid4().hex[:12]}"
    headers = {"Authorization": f"Bearer {TokenVerifier(SECRET).mint(user_id, 3600)}"}
    bases = [f"{url}/api/{user_id}" for url in instance_urls]

    run = run_writers_and_reader(bases, bases[0], headers, operations=FEED_OPERATIONS)

    assert_mirror_is_the_server(run, len(bases), FEED_OPERATIONS)
