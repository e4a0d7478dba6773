"""PATCH /tasks/{id}: a JSON Merge Patch, in either media type."""

import json

import httpx
import pytest

from tests.support.api import Api
from tests.support.contract import assert_problem, assert_task

MEDIA_TYPES = ["application/merge-patch+json", "application/json"]


def patch(api: Api, task_id: int, body: object, media_type: str) -> httpx.Response:
    return api.request(
        "PATCH", f"/{task_id}", content=json.dumps(body), headers={"Content-Type": media_type}
    )


@pytest.mark.parametrize("media_type", MEDIA_TYPES)
class TestPatchTask:
    def test_changes_the_fields_present_and_keeps_the_rest(self, api: Api, media_type: str) -> None:
        task = api.create(title="Old", description="Keep", priority="low", due_date="2026-05-01")

        response = patch(api, task["id"], {"title": "New", "due_date": None}, media_type)

        assert response.status_code == 200
        body = response.json()
        assert_task(body)
        expected = {**task, "title": "New", "due_date": None, "version": 2}
        assert body == {**expected, "updated_at": body["updated_at"]}
        assert api.get(task["id"]).json() == body

    @pytest.mark.parametrize(
        "body", [{"title": None}, {"priority": None}, {"completed": None}, {}, {"color": "red"}]
    )
    def test_422_for_what_cannot_be_patched_and_nothing_changes(
        self, api: Api, media_type: str, body: object
    ) -> None:
        task = api.create()

        assert_problem(patch(api, task["id"], body, media_type), 422)

        assert api.get(task["id"]).json() == task

    def test_404_for_another_users_task(self, api: Api, other_api: Api, media_type: str) -> None:
        theirs = other_api.create()

        assert_problem(patch(api, theirs["id"], {"title": "Mine"}, media_type), 404)

        assert other_api.get(theirs["id"]).json() == theirs


def test_415_for_another_media_type(api: Api) -> None:
    task = api.create()

    assert_problem(patch(api, task["id"], {"title": "X"}, "text/plain"), 415)

    assert api.get(task["id"]).json() == task


def test_put_keeps_its_meaning(api: Api) -> None:
    task = api.create(description="Keep")

    response = api.request("PUT", f"/{task['id']}", json={"title": "Renamed"})

    assert response.status_code == 200
    assert response.json()["description"] == "Keep"
    assert response.json()["title"] == "Renamed"
