from tests.support.api import Api
from tests.support.contract import assert_problem


class TestDeleteTask:
    def test_204_with_an_empty_body_and_the_task_is_gone(self, api: Api) -> None:
        task = api.create()

        response = api.request("DELETE", f"/{task['id']}")

        assert response.status_code == 204
        assert response.content == b""
        assert_problem(api.get(task["id"]), 404)
        assert api.list().json() == []

    def test_404_the_second_time(self, api: Api) -> None:
        task = api.create()
        api.request("DELETE", f"/{task['id']}")

        assert_problem(api.request("DELETE", f"/{task['id']}"), 404)

    def test_404_for_another_users_task_which_survives(self, api: Api, other_api: Api) -> None:
        theirs = other_api.create()

        assert_problem(api.request("DELETE", f"/{theirs['id']}"), 404)

        assert other_api.get(theirs["id"]).status_code == 200

    def test_422_for_a_bad_id(self, api: Api) -> None:
        assert_problem(api.request("DELETE", "/0"), 422)
