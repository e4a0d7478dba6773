"""Versions, ETags, If-None-Match on reads and If-Match on every write."""

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.support.api import SECRET, Api
from tests.support.contract import assert_problem, assert_task

# Each write that takes If-Match: (method, path suffix, JSON body or None).
WRITES = [
    pytest.param("PUT", "", {"title": "Changed"}, id="updateTask"),
    pytest.param("PATCH", "", {"title": "Changed"}, id="patchTask"),
    pytest.param("PATCH", "/complete", None, id="completeTask"),
    pytest.param("DELETE", "", None, id="deleteTask"),
]


def write(api: Api, method: str, task_id: int, suffix: str, body: Any, **headers: str) -> Any:
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    return api.request(method, f"/{task_id}{suffix}", **kwargs)


class TestVersionsAndETags:
    def test_a_new_task_is_version_1_with_its_etag(self, api: Api) -> None:
        response = api.request("POST", json={"title": "New"})

        assert response.status_code == 201
        assert response.json()["version"] == 1
        assert response.headers["etag"] == '"1"'
        assert api.get(response.json()["id"]).headers["etag"] == '"1"'

    def test_every_change_adds_one_to_the_version(self, api: Api) -> None:
        task = api.create()
        path = f"/{task['id']}"

        put = api.request("PUT", path, json={"title": "B"})
        patch = api.request("PATCH", path, json={"priority": "high"})
        toggle = api.request("PATCH", f"{path}/complete")

        assert [r.json()["version"] for r in (put, patch, toggle)] == [2, 3, 4]
        assert [r.headers["etag"] for r in (put, patch, toggle)] == ['"2"', '"3"', '"4"']
        stored = api.get(task["id"])
        assert stored.json()["version"] == 4
        assert stored.headers["etag"] == '"4"'


class TestIfNoneMatch:
    @pytest.mark.parametrize("header", ['"1"', "*", '"7", "1"', 'W/"1"'])
    def test_304_without_a_body_when_it_names_the_current_version(
        self, api: Api, header: str
    ) -> None:
        task = api.create()

        response = api.request("GET", f"/{task['id']}", headers={"If-None-Match": header})

        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == '"1"'

    def test_200_with_the_task_once_it_changed(self, api: Api) -> None:
        task = api.create()
        api.request("PUT", f"/{task['id']}", json={"title": "Changed"})

        response = api.request("GET", f"/{task['id']}", headers={"If-None-Match": '"1"'})

        assert response.status_code == 200
        assert response.json()["title"] == "Changed"
        assert response.headers["etag"] == '"2"'

    def test_404_for_another_users_task(self, api: Api, other_api: Api) -> None:
        theirs = other_api.create()

        response = api.request("GET", f"/{theirs['id']}", headers={"If-None-Match": "*"})

        assert_problem(response, 404)


class TestIfMatch:
    @pytest.mark.parametrize(("method", "suffix", "body"), WRITES)
    def test_matching_etag_writes(self, api: Api, method: str, suffix: str, body: Any) -> None:
        task = api.create()

        response = write(api, method, task["id"], suffix, body, **{"If-Match": '"9", "1"'})

        assert response.status_code in (200, 204), response.text
        if method == "DELETE":
            assert api.get(task["id"]).status_code == 404
        else:
            assert response.headers["etag"] == '"2"'
            assert api.get(task["id"]).json()["version"] == 2

    @pytest.mark.parametrize(("method", "suffix", "body"), WRITES)
    @pytest.mark.parametrize("header", ['"2"', 'W/"1"', "garbage", '"1'])
    def test_412_with_the_current_etag_and_nothing_changed(
        self, api: Api, method: str, suffix: str, body: Any, header: str
    ) -> None:
        task = api.create()

        response = write(api, method, task["id"], suffix, body, **{"If-Match": header})

        body_412 = assert_problem(response, 412)
        assert response.headers["etag"] == '"1"'
        assert '"1"' in body_412["detail"]
        assert api.get(task["id"]).json() == task

    @pytest.mark.parametrize(("method", "suffix", "body"), WRITES)
    def test_star_matches_any_version(self, api: Api, method: str, suffix: str, body: Any) -> None:
        task = api.create()
        api.request("PUT", f"/{task['id']}", json={"title": "v2"})

        response = write(api, method, task["id"], suffix, body, **{"If-Match": "*"})

        assert response.status_code in (200, 204), response.text

    @pytest.mark.parametrize(("method", "suffix", "body"), WRITES)
    def test_404_for_another_users_task_with_or_without_if_match(
        self, api: Api, other_api: Api, method: str, suffix: str, body: Any
    ) -> None:
        theirs = other_api.create()

        for headers in ({}, {"If-Match": '"1"'}, {"If-Match": '"5"'}):
            assert_problem(write(api, method, theirs["id"], suffix, body, **headers), 404)

        assert other_api.get(theirs["id"]).json() == theirs

    def test_20_concurrent_puts_with_the_same_if_match_give_exactly_one_200(self, api: Api) -> None:
        task = api.create()

        def put(number: int) -> Any:
            return api.request(
                "PUT",
                f"/{task['id']}",
                json={"title": f"writer {number}"},
                headers={"If-Match": '"1"'},
            )

        with ThreadPoolExecutor(max_workers=20) as pool:
            responses = list(pool.map(put, range(20)))

        assert Counter(r.status_code for r in responses) == {200: 1, 412: 19}
        winner = next(r for r in responses if r.status_code == 200).json()
        assert all(r.headers["etag"] == '"2"' for r in responses)
        stored = api.get(task["id"]).json()
        assert stored == winner
        assert stored["version"] == 2


@pytest.fixture
def strict(client_with: Callable[..., TestClient], api: Api) -> Api:
    """The same user, on an app with REQUIRE_IF_MATCH=true."""
    client = client_with(require_if_match=True, validate_responses=True, better_auth_secret=SECRET)
    strict = Api(client, api.user_id, "")
    strict.headers = api.headers
    return strict


class TestRequireIfMatch:
    @pytest.mark.parametrize(("method", "suffix", "body"), WRITES)
    def test_428_without_if_match_and_nothing_changed(
        self, strict: Api, api: Api, method: str, suffix: str, body: Any
    ) -> None:
        task = api.create()

        response = write(strict, method, task["id"], suffix, body)

        assert_problem(response, 428)
        assert api.get(task["id"]).json() == task
        allowed = write(strict, method, task["id"], suffix, body, **{"If-Match": '"1"'})
        assert allowed.status_code in (200, 204)

    def test_reads_and_creates_need_no_if_match(self, strict: Api) -> None:
        created = strict.request("POST", json={"title": "Fine"})

        assert created.status_code == 201
        assert_task(created.json())
        assert strict.get(created.json()["id"]).status_code == 200
