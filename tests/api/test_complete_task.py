from typing import Any

import pytest

from tests.support.api import Api
from tests.support.contract import assert_problem, assert_task


class TestCompleteTask:
    def test_no_body_toggles(self, api: Api) -> None:
        task = api.create()
        path = f"/{task['id']}/complete"

        done = api.request("PATCH", path)
        undone = api.request("PATCH", path)

        assert done.status_code == 200
        assert_task(done.json())
        assert done.json()["completed"] is True
        assert done.json()["completed_at"] == done.json()["updated_at"]
        assert undone.json()["completed"] is False
        assert undone.json()["completed_at"] is None
        assert api.get(task["id"]).json() == undone.json()

    def test_no_body_with_a_json_content_type_toggles(self, api: Api) -> None:
        task = api.create()

        response = api.request(
            "PATCH", f"/{task['id']}/complete", headers={"Content-Type": "application/json"}
        )

        assert response.json()["completed"] is True

    def test_body_sets_and_a_retry_is_safe(self, api: Api) -> None:
        task = api.create()
        path = f"/{task['id']}/complete"

        first = api.request("PATCH", path, json={"completed": True}).json()
        retried = api.request("PATCH", path, json={"completed": True}).json()

        assert first["completed"] is retried["completed"] is True
        assert retried["completed_at"] == first["completed_at"]
        assert api.request("PATCH", path, json={"completed": False}).json()["completed_at"] is None

    def test_completed_at_is_kept_when_completed_again(self, api: Api) -> None:
        task = api.create(completed=True)

        again = api.request("PATCH", f"/{task['id']}/complete", json={"completed": True}).json()

        assert again["completed_at"] == task["completed_at"]
        assert again["updated_at"] > task["updated_at"]

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param({}, id="empty-object"),
            pytest.param({"completed": "yes"}, id="not-boolean"),
            pytest.param({"completed": None}, id="null"),
            pytest.param({"completed": True, "title": "x"}, id="unknown-property"),
        ],
    )
    def test_422_changes_nothing(self, api: Api, body: Any) -> None:
        task = api.create()

        assert_problem(api.request("PATCH", f"/{task['id']}/complete", json=body), 422)

        assert api.get(task["id"]).json() == task

    def test_400_for_malformed_json(self, api: Api) -> None:
        task = api.create()

        response = api.request(
            "PATCH",
            f"/{task['id']}/complete",
            content=b"{nope",
            headers={"Content-Type": "application/json"},
        )

        assert_problem(response, 400)
        assert api.get(task["id"]).json() == task

    def test_404_for_another_users_task_which_stays_open(self, api: Api, other_api: Api) -> None:
        theirs = other_api.create()

        assert_problem(api.request("PATCH", f"/{theirs['id']}/complete"), 404)

        assert other_api.get(theirs["id"]).json()["completed"] is False
