import pytest

from tests.support.api import Api
from tests.support.contract import assert_problem


class TestGetTask:
    def test_200_returns_the_task(self, api: Api) -> None:
        task = api.create(title="Read", description="A book")

        response = api.get(task["id"])

        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == task

    def test_404_for_a_task_that_does_not_exist(self, api: Api) -> None:
        problem = assert_problem(api.get(9_000_000_000), 404)

        assert problem["detail"] == "Task 9000000000 not found."

    def test_404_for_another_users_task_says_the_same(self, api: Api, other_api: Api) -> None:
        theirs = other_api.create(title="Private")

        mine = assert_problem(api.get(theirs["id"]), 404)

        assert mine["detail"] == f"Task {theirs['id']} not found."
        assert other_api.get(theirs["id"]).status_code == 200

    @pytest.mark.parametrize(
        "task_id",
        ["abc", "0", "-1", "1.5", "9223372036854775808", "99999999999999999999999999"],
    )
    def test_422_for_a_bad_task_id(self, api: Api, task_id: str) -> None:
        problem = assert_problem(api.request("GET", f"/{task_id}"), 422)

        assert "task_id" in problem["detail"]

    def test_largest_int64_id_is_a_clean_404(self, api: Api) -> None:
        assert_problem(api.get(9223372036854775807), 404)
