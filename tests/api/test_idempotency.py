"""Idempotency-Key: a retried create or toggle happens once, and replays the first answer."""

import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from tests.support.api import SECRET, Api
from tests.support.contract import assert_problem, assert_task


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def stored_keys(engine: Engine, user_id: str) -> list[tuple[str, int]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT key, status FROM idempotency_keys WHERE user_id = :u ORDER BY key"),
            {"u": user_id},
        )
        return [(row.key, row.status) for row in rows]


class TestCreate:
    def test_a_retry_replays_the_first_answer_and_creates_nothing(
        self, api: Api, engine: Engine
    ) -> None:
        key = str(uuid.uuid4())
        first = api.request("POST", json={"title": "Once"}, headers=keyed(key))
        api.request("PUT", f"/{first.json()['id']}", json={"title": "Changed since"})

        retry = api.request("POST", json={"title": "Once"}, headers=keyed(key))

        assert first.status_code == retry.status_code == 201
        assert "idempotent-replayed" not in first.headers
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.json() == first.json()
        assert retry.headers["location"] == first.headers["location"]
        assert retry.headers["etag"] == first.headers["etag"] == '"1"'
        assert_task(retry.json())
        assert [task["id"] for task in api.list().json()] == [first.json()["id"]]
        assert stored_keys(engine, api.user_id) == [(key, 201)]

    def test_422_for_the_same_key_with_another_body(self, api: Api) -> None:
        api.request("POST", json={"title": "First"}, headers=keyed("k-1"))

        body = assert_problem(
            api.request("POST", json={"title": "Other"}, headers=keyed("k-1")), 422
        )

        assert "different request" in body["detail"]
        assert [task["title"] for task in api.list().json()] == ["First"]

    def test_keys_are_scoped_to_the_user(self, api: Api, other_api: Api) -> None:
        mine = api.request("POST", json={"title": "Same"}, headers=keyed("shared"))
        theirs = other_api.request("POST", json={"title": "Same"}, headers=keyed("shared"))

        assert mine.status_code == theirs.status_code == 201
        assert "idempotent-replayed" not in theirs.headers
        assert mine.json()["id"] != theirs.json()["id"]

    def test_an_error_is_not_stored_so_the_fixed_request_runs(
        self, api: Api, engine: Engine
    ) -> None:
        refused = api.request("POST", json={"title": ""}, headers=keyed("fix-me"))
        assert_problem(refused, 422)
        assert stored_keys(engine, api.user_id) == []

        fixed = api.request("POST", json={"title": "Fixed"}, headers=keyed("fix-me"))

        assert fixed.status_code == 201
        assert "idempotent-replayed" not in fixed.headers

    @pytest.mark.parametrize("key", ["", "a b", "é".encode(), "x" * 256, "tab\there"])
    def test_422_for_a_malformed_key(self, api: Api, key: str | bytes) -> None:
        response = api.request("POST", json={"title": "T"}, headers={"Idempotency-Key": key})

        assert_problem(response, 422)
        assert api.list().json() == []

    def test_20_concurrent_creates_with_one_key_store_one_task(self, api: Api) -> None:
        def create(_: int) -> httpx.Response:
            return api.request("POST", json={"title": "Racing"}, headers=keyed("race"))

        with ThreadPoolExecutor(max_workers=20) as pool:
            responses = list(pool.map(create, range(20)))

        statuses = Counter(r.status_code for r in responses)
        assert set(statuses) <= {201, 409}, statuses
        created = [r for r in responses if r.status_code == 201]
        assert len([r for r in created if "idempotent-replayed" not in r.headers]) == 1
        assert len({r.json()["id"] for r in created}) == 1
        for conflict in (r for r in responses if r.status_code == 409):
            assert_problem(conflict, 409)
        assert len(api.list().json()) == 1


class TestToggleAndPatch:
    def test_a_retried_body_less_toggle_flips_once(self, api: Api) -> None:
        task = api.create()
        path = f"/{task['id']}/complete"

        first = api.request("PATCH", path, headers=keyed("toggle-1"))
        retry = api.request("PATCH", path, headers=keyed("toggle-1"))

        assert first.status_code == retry.status_code == 200
        assert retry.headers["idempotent-replayed"] == "true"
        assert first.json() == retry.json()
        assert first.json()["completed"] is True
        stored = api.get(task["id"]).json()
        assert stored["completed"] is True
        assert stored["version"] == 2

    def test_a_new_key_toggles_again(self, api: Api) -> None:
        task = api.create()
        path = f"/{task['id']}/complete"

        api.request("PATCH", path, headers=keyed("toggle-a"))
        again = api.request("PATCH", path, headers=keyed("toggle-b"))

        assert again.json()["completed"] is False
        assert api.get(task["id"]).json()["version"] == 3

    def test_a_key_used_on_another_task_is_422(self, api: Api) -> None:
        one, two = api.create(), api.create()
        api.request("PATCH", f"/{one['id']}/complete", headers=keyed("k"))

        assert_problem(api.request("PATCH", f"/{two['id']}/complete", headers=keyed("k")), 422)

        assert api.get(two["id"]).json() == two

    def test_a_retried_conditional_patch_replays_instead_of_412(self, api: Api) -> None:
        task = api.create()
        headers = {"If-Match": '"1"', **keyed("patch-1")}

        first = api.request("PATCH", f"/{task['id']}", json={"title": "B"}, headers=headers)
        retry = api.request("PATCH", f"/{task['id']}", json={"title": "B"}, headers=headers)

        assert first.status_code == retry.status_code == 200
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.headers["etag"] == '"2"'
        assert api.get(task["id"]).json()["version"] == 2

    def test_a_404_is_not_stored(self, api: Api, engine: Engine) -> None:
        assert_problem(api.request("PATCH", "/999999999/complete", headers=keyed("nf")), 404)

        assert stored_keys(engine, api.user_id) == []


def test_an_expired_key_runs_the_request_again_and_is_cleaned_up(
    client_with: Callable[..., TestClient], api: Api, engine: Engine
) -> None:
    short = Api(
        client_with(idempotency_key_ttl=0.5, validate_responses=True, better_auth_secret=SECRET),
        api.user_id,
        "",
    )
    short.headers = api.headers
    first = short.request("POST", json={"title": "Again"}, headers=keyed("old"))
    time.sleep(1)

    second: Any = short.request("POST", json={"title": "Again"}, headers=keyed("old"))

    assert second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    assert stored_keys(engine, api.user_id) == [("old", 201)]
    assert len(api.list().json()) == 2
