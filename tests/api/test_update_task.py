from typing import Any

import pytest

from tests.support.api import Api
from tests.support.contract import assert_problem, assert_task


class TestUpdateTask:
    def test_200_changes_only_the_fields_sent(self, api: Api) -> None:
        task = api.create(title="Old", description="Keep me", priority="low", due_date="2026-05-01")

        response = api.request("PUT", f"/{task['id']}", json={"title": "New"})

        assert response.status_code == 200
        updated = response.json()
        assert_task(updated)
        assert updated == {
            **task,
            "title": "New",
            "updated_at": updated["updated_at"],
            "version": 2,
        }
        assert updated["updated_at"] > task["updated_at"]
        assert api.get(task["id"]).json() == updated

    def test_null_clears_description_and_due_date(self, api: Api) -> None:
        task = api.create(description="Something", due_date="2026-05-01")

        updated = api.request(
            "PUT", f"/{task['id']}", json={"description": None, "due_date": None}
        ).json()

        assert updated["description"] is None
        assert updated["due_date"] is None
        assert api.get(task["id"]).json()["description"] is None

    def test_every_field_can_change(self, api: Api) -> None:
        task = api.create()
        changes = {
            "title": "All new",
            "description": "Details",
            "completed": True,
            "priority": "high",
            "due_date": "2027-01-31",
        }

        updated = api.request("PUT", f"/{task['id']}", json=changes).json()

        assert {key: updated[key] for key in changes} == changes

    def test_updated_at_advances_on_every_change(self, api: Api) -> None:
        task = api.create()
        stamps = [task["updated_at"]]
        for title in ("one", "two", "three"):
            stamps.append(
                api.request("PUT", f"/{task['id']}", json={"title": title}).json()["updated_at"]
            )

        assert stamps == sorted(stamps)
        assert len(set(stamps)) == len(stamps)

    def test_completed_at_is_set_kept_and_cleared(self, api: Api) -> None:
        task = api.create()
        path = f"/{task['id']}"

        done = api.request("PUT", path, json={"completed": True}).json()
        again = api.request("PUT", path, json={"completed": True, "title": "Still done"}).json()
        reopened = api.request("PUT", path, json={"completed": False}).json()

        assert done["completed_at"] is not None
        assert done["completed_at"] == done["updated_at"]
        assert again["completed_at"] == done["completed_at"]
        assert reopened["completed_at"] is None
        assert api.get(task["id"]).json()["completed_at"] is None

    @pytest.mark.parametrize(
        ("body", "fragment"),
        [
            pytest.param({}, "body", id="empty-object"),
            pytest.param({"title": ""}, "title", id="empty-title"),
            pytest.param({"title": None}, "title", id="null-title"),
            pytest.param({"completed": None}, "completed", id="null-completed"),
            pytest.param({"priority": None}, "priority", id="null-priority"),
            pytest.param({"priority": "urgent"}, "priority", id="bad-priority"),
            pytest.param({"due_date": "tomorrow"}, "due_date", id="bad-date"),
            pytest.param({"user_id": "someone-else"}, "user_id", id="owner-is-read-only"),
            pytest.param(
                {"created_at": "2020-01-01T00:00:00Z"}, "created_at", id="read-only-stamp"
            ),
        ],
    )
    def test_422_changes_nothing(self, api: Api, body: Any, fragment: str) -> None:
        task = api.create(title="Untouched")

        problem = assert_problem(api.request("PUT", f"/{task['id']}", json=body), 422)

        assert fragment in problem["detail"]
        assert api.get(task["id"]).json() == task

    def test_400_for_malformed_json_changes_nothing(self, api: Api) -> None:
        task = api.create()

        response = api.request(
            "PUT", f"/{task['id']}", content=b"{", headers={"Content-Type": "application/json"}
        )

        assert_problem(response, 400)
        assert api.get(task["id"]).json() == task

    def test_415_for_a_non_json_body(self, api: Api) -> None:
        task = api.create()

        response = api.request(
            "PUT", f"/{task['id']}", content=b"title", headers={"Content-Type": "text/plain"}
        )

        assert_problem(response, 415)

    def test_404_for_another_users_task_changes_nothing(self, api: Api, other_api: Api) -> None:
        theirs = other_api.create(title="Theirs")

        assert_problem(api.request("PUT", f"/{theirs['id']}", json={"title": "Mine now"}), 404)

        assert other_api.get(theirs["id"]).json() == theirs
