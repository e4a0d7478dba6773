"""Tags on tasks, and the user's tag collection: list, rename (merging), delete."""

from typing import Any

import pytest

from tests.support.api import Api
from tests.support.contract import assert_conforms, assert_problem


def tags_by_task(api: Api) -> dict[int, list[str]]:
    return {task["id"]: task["tags"] for task in api.all()}


class TestTaskTags:
    def test_default_is_empty(self, api: Api) -> None:
        assert api.create()["tags"] == []

    def test_normalised_and_kept_in_the_order_given(self, api: Api) -> None:
        task = api.create(tags=["  Work ", "URGENT", "home"])

        assert task["tags"] == ["work", "urgent", "home"]
        assert api.get(task["id"]).json()["tags"] == ["work", "urgent", "home"]

    def test_update_replaces_the_whole_array(self, api: Api) -> None:
        task = api.create(tags=["a", "b"])

        response = api.request("PUT", f"/{task['id']}", json={"tags": ["c", "a"]})

        assert response.status_code == 200, response.text
        assert response.json()["tags"] == ["c", "a"]
        assert api.get(task["id"]).json()["tags"] == ["c", "a"]
        assert api.request("PUT", f"/{task['id']}", json={"tags": []}).json()["tags"] == []
        assert api.tags().json() == []

    def test_deleting_a_task_deletes_its_tags(self, api: Api) -> None:
        task = api.create(tags=["gone"])

        assert api.request("DELETE", f"/{task['id']}").status_code == 204

        assert api.tags().json() == []

    @pytest.mark.parametrize(
        "tags",
        [
            ["work", " WORK"],  # the same after normalising
            ["a"] * 2,
            [str(n) for n in range(21)],
            ["x" * 51],
            ["\u0130" * 50],  # 100 characters once lowercased
            [""],
            ["   "],
            ["tab\tbed"],
            ["nul\u0000"],
            ["c1\u0085"],
            ["work/home"],  # a tag must fit in a path segment
            "work",
            [1],
        ],
    )
    def test_422_and_nothing_stored(self, api: Api, tags: Any) -> None:
        task = api.create(tags=["keep"])

        created = api.request("POST", json={"title": "t", "tags": tags})
        updated = api.request("PUT", f"/{task['id']}", json={"tags": tags})

        assert_problem(created, 422)
        assert_problem(updated, 422)
        assert api.all() == [task]


class TestListTags:
    def test_names_with_counts_sorted_by_name(self, api: Api, other_api: Api) -> None:
        api.create(tags=["work", "urgent"])
        api.create(tags=["work"])
        api.create(tags=["home"])
        other_api.create(tags=["work", "secret"])

        response = api.tags()

        assert response.status_code == 200
        assert response.json() == [
            {"name": "home", "count": 1},
            {"name": "urgent", "count": 1},
            {"name": "work", "count": 2},
        ]
        for tag in response.json():
            assert_conforms(tag, "Tag")

    def test_another_users_tags_are_forbidden(self, api: Api, other_api: Api) -> None:
        response = api.client.get(f"/api/{other_api.user_id}/tags", headers=api.headers)

        assert_problem(response, 403)


class TestRenameTag:
    def test_renames_on_every_task_and_marks_them_changed(self, api: Api) -> None:
        first = api.create(tags=["job", "urgent"])
        second = api.create(tags=["job"])
        untouched = api.create(tags=["home"])

        response = api.tags("PUT", "/job", json={"name": "Career"})

        assert response.status_code == 200, response.text
        assert response.json() == {"name": "career", "count": 2}
        stored = {task["id"]: task for task in api.all()}
        assert stored[first["id"]]["tags"] == ["career", "urgent"]
        assert stored[second["id"]]["tags"] == ["career"]
        assert stored[first["id"]]["updated_at"] > first["updated_at"]
        assert stored[untouched["id"]] == untouched

    def test_merging_into_an_existing_tag_never_duplicates_it(self, api: Api) -> None:
        both = api.create(tags=["job", "x", "work"])
        only_old = api.create(tags=["job"])
        only_new = api.create(tags=["work"])

        response = api.tags("PUT", "/job", json={"name": "work"})

        assert response.status_code == 200, response.text
        assert response.json() == {"name": "work", "count": 3}
        assert tags_by_task(api) == {
            both["id"]: ["x", "work"],
            only_old["id"]: ["work"],
            only_new["id"]: ["work"],
        }
        assert api.tags().json() == [{"name": "work", "count": 3}, {"name": "x", "count": 1}]

    def test_the_path_is_normalised_too(self, api: Api) -> None:
        api.create(tags=["work"])

        response = api.tags("PUT", "/WORK", json={"name": "work"})

        assert response.status_code == 200, response.text
        assert response.json() == {"name": "work", "count": 1}

    def test_unknown_tag_is_404(self, api: Api, other_api: Api) -> None:
        other_api.create(tags=["theirs"])

        for name in ("nothing", "theirs"):
            response = api.tags("PUT", f"/{name}", json={"name": "mine"})
            assert f"'{name}'" in assert_problem(response, 404)["detail"]
        assert other_api.tags().json() == [{"name": "theirs", "count": 1}]

    @pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 51}, {"name": "a", "b": 1}])
    def test_422_and_nothing_changed(self, api: Api, body: dict[str, Any]) -> None:
        task = api.create(tags=["work"])

        assert_problem(api.tags("PUT", "/work", json=body), 422)
        assert api.all() == [task]


class TestDeleteTag:
    def test_removes_it_from_every_task(self, api: Api) -> None:
        first = api.create(tags=["a", "gone", "b"])
        untouched = api.create(tags=["b"])

        response = api.tags("DELETE", "/Gone")

        assert response.status_code == 204
        stored = {task["id"]: task for task in api.all()}
        assert stored[first["id"]]["tags"] == ["a", "b"]
        assert stored[first["id"]]["updated_at"] > first["updated_at"]
        assert stored[untouched["id"]] == untouched
        assert api.tags().json() == [{"name": "a", "count": 1}, {"name": "b", "count": 2}]

    def test_unknown_tag_is_404(self, api: Api, other_api: Api) -> None:
        other_api.create(tags=["theirs"])

        assert_problem(api.tags("DELETE", "/theirs"), 404)
        assert other_api.tags().json() == [{"name": "theirs", "count": 1}]
