"""No instance keeps anything the others need: concurrent writes spread straight over the
three instances (bypassing HAProxy) behave as if one process served them all."""

import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from service.tokens import TokenVerifier
from tests.support.api import SECRET, Api

pytestmark = pytest.mark.cluster

TOGGLES = 31
CREATES = 45


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
