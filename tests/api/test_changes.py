"""The change feed: every change after a cursor, in commit order, each once, deletions too."""

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.support.api import SECRET, Api
from tests.support.contract import assert_conforms, assert_problem
from tests.support.feed import apply_page


def feed(api: Api, cursor: str | None = None, limit: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if cursor is not None:
        params["cursor"] = cursor
    if limit is not None:
        params["limit"] = limit
    response = api.request("GET", "/changes", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert_conforms(body, "TaskChanges")
    return body


def walk(api: Api, mirror: dict[int, dict[str, Any]], cursor: str | None, limit: int = 500) -> str:
    """Apply pages until has_more is false, as a client does; the cursor to poll with next."""
    while True:
        page = feed(api, cursor, limit)
        apply_page(mirror, page)
        cursor = page["cursor"]
        if not page["has_more"]:
            return cursor


class TestFeed:
    def test_an_empty_feed_answers_a_cursor_that_stays_put(self, api: Api) -> None:
        first = feed(api)

        again = feed(api, first["cursor"])

        assert first["changes"] == again["changes"] == []
        assert first["has_more"] is again["has_more"] is False
        assert again["cursor"] == first["cursor"]

    def test_each_task_once_in_its_latest_state_in_commit_order(self, api: Api) -> None:
        one, two, three = api.create(title="one"), api.create(title="two"), api.create(title="3")
        api.request("PUT", f"/{one['id']}", json={"title": "one, renamed"})
        api.request("DELETE", f"/{two['id']}")

        changes = feed(api)["changes"]

        assert [(c["id"], c["deleted"]) for c in changes] == [
            (three["id"], False),
            (one["id"], False),
            (two["id"], True),
        ]
        assert changes[1]["task"] == api.get(one["id"]).json()
        assert changes[1]["task"]["version"] == 2
        assert changes[2]["task"] is None

    def test_a_cursor_resumes_right_after_its_page(self, api: Api) -> None:
        old = api.create()
        cursor = feed(api)["cursor"]
        new = api.create()
        api.request("PATCH", f"/{old['id']}/complete")

        page = feed(api, cursor)

        assert [c["id"] for c in page["changes"]] == [new["id"], old["id"]]
        assert page["changes"][1]["task"]["completed"] is True
        assert feed(api, page["cursor"])["changes"] == []

    def test_pages_of_limit_with_has_more(self, api: Api) -> None:
        created = [api.create(title=f"t{n}")["id"] for n in range(5)]

        first = feed(api, limit=2)
        second = feed(api, first["cursor"], limit=2)
        third = feed(api, second["cursor"], limit=2)

        assert [first["has_more"], second["has_more"], third["has_more"]] == [True, True, False]
        ids = [c["id"] for page in (first, second, third) for c in page["changes"]]
        assert ids == created

    def test_another_users_changes_never_show(self, api: Api, other_api: Api) -> None:
        theirs = other_api.create()
        other_api.request("DELETE", f"/{theirs['id']}")

        assert feed(api)["changes"] == []

    def test_a_mirror_built_from_the_feed_equals_the_list(self, api: Api) -> None:
        rng = random.Random(12)
        mirror: dict[int, dict[str, Any]] = {}
        cursor = walk(api, mirror, None)
        ids: list[int] = []
        for step in range(60):
            action = rng.choice(["create", "update", "toggle", "delete"]) if ids else "create"
            if action == "create":
                ids.append(api.create(title=f"step {step}")["id"])
            else:
                task_id = rng.choice(ids)
                if action == "update":
                    api.request("PATCH", f"/{task_id}", json={"title": f"step {step}"})
                elif action == "toggle":
                    api.request("PATCH", f"/{task_id}/complete")
                else:
                    api.request("DELETE", f"/{task_id}")
                    ids.remove(task_id)
            if step % 7 == 0:
                cursor = walk(api, mirror, cursor, limit=3)

        walk(api, mirror, cursor, limit=3)

        listed = api.list(limit=500).json()
        assert mirror == {task["id"]: task for task in listed}

    def test_deleted_ids_are_never_reused(self, api: Api) -> None:
        task = api.create()
        api.request("DELETE", f"/{task['id']}")

        assert api.create()["id"] > task["id"]

    @pytest.mark.parametrize(
        "cursor", ["nonsense", "v1.", "v1.abc", "v2.3", "v1.1234567890123456789"]
    )
    def test_422_for_a_cursor_the_server_did_not_issue(self, api: Api, cursor: str) -> None:
        response = api.request("GET", "/changes", params={"cursor": cursor})

        assert_problem(response, 422)

    @pytest.mark.parametrize("limit", [0, 1001])
    def test_422_for_a_limit_out_of_range(self, api: Api, limit: int) -> None:
        assert_problem(api.request("GET", "/changes", params={"limit": limit}), 422)

    def test_403_for_another_users_feed(self, api: Api, other_api: Api) -> None:
        response = api.client.get(f"/api/{other_api.user_id}/tasks/changes", headers=api.headers)

        assert_problem(response, 403)


class TestTombstoneRetention:
    @pytest.fixture
    def forgetful(self, client_with: Callable[..., TestClient], api: Api) -> Api:
        """The same user on an app that keeps tombstones for no time at all."""
        client = client_with(
            tombstone_retention=0, validate_responses=True, better_auth_secret=SECRET
        )
        forgetful = Api(client, api.user_id, "")
        forgetful.headers = api.headers
        return forgetful

    def test_410_for_a_cursor_before_a_purged_tombstone(self, forgetful: Api) -> None:
        one, two = forgetful.create(), forgetful.create()
        cursor = feed(forgetful)["cursor"]
        forgetful.request("DELETE", f"/{one['id']}")
        # The next delete purges the first tombstone, which the cursor has not seen.
        forgetful.request("DELETE", f"/{two['id']}")

        body = assert_problem(forgetful.request("GET", "/changes", params={"cursor": cursor}), 410)

        assert "leaving out the cursor" in body["detail"]
        resync = feed(forgetful)
        assert [(c["id"], c["deleted"]) for c in resync["changes"]] == [(two["id"], True)]
        assert feed(forgetful, resync["cursor"])["changes"] == []

    def test_a_cursor_past_the_purge_still_works(self, forgetful: Api) -> None:
        one, two = forgetful.create(), forgetful.create()
        forgetful.request("DELETE", f"/{one['id']}")
        forgetful.request("DELETE", f"/{two['id']}")
        cursor = feed(forgetful)["cursor"]
        three = forgetful.create()

        assert [c["id"] for c in feed(forgetful, cursor)["changes"]] == [three["id"]]


def test_concurrent_writers_and_a_reader_agree(api: Api) -> None:
    """In-process: 4 writers and a polling reader; tests/service/ repeats this across workers."""
    mirror: dict[int, dict[str, Any]] = {}
    state = {"cursor": walk(api, mirror, None)}

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[int] = []
        for step in range(25):
            if not mine or rng.random() < 0.4:
                mine.append(api.create(title=f"w{seed} {step}")["id"])
            elif rng.random() < 0.3:
                api.request("DELETE", f"/{mine.pop(rng.randrange(len(mine)))}")
            else:
                api.request("PATCH", f"/{rng.choice(mine)}/complete")
            if seed == 0 and step % 5 == 0:
                state["cursor"] = walk(api, mirror, state["cursor"], limit=4)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(writer, range(4)))
    walk(api, mirror, state["cursor"])

    assert mirror == {task["id"]: task for task in api.list(limit=500).json()}
