from typing import Any

import pytest

from tests.support.api import Api
from tests.support.contract import assert_problem, assert_task


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [task["id"] for task in response.json()]


class TestListTasks:
    def test_200_empty_for_a_new_user(self, api: Api) -> None:
        response = api.list()

        assert response.status_code == 200
        assert response.json() == []
        assert response.headers["x-total-count"] == "0"

    def test_default_is_newest_first_with_every_field(self, api: Api) -> None:
        first, second = api.create(title="first"), api.create(title="second")

        response = api.list()

        assert response.json() == [second, first]
        for task in response.json():
            assert_task(task)

    def test_status_filters(self, api: Api) -> None:
        done = api.create(completed=True)
        open_task = api.create()

        assert ids(api.list(status="completed")) == [done["id"]]
        assert ids(api.list(status="pending")) == [open_task["id"]]
        assert ids(api.list(status="all")) == [open_task["id"], done["id"]]
        assert api.list(status="pending").headers["x-total-count"] == "1"

    @pytest.mark.parametrize(("sort", "default_order"), [("created", "desc"), ("updated", "desc")])
    def test_time_keys_default_to_descending(self, api: Api, sort: str, default_order: str) -> None:
        a, b, c = (api.create(title=t) for t in "abc")
        api.request("PUT", f"/{a['id']}", json={"title": "a2"})  # a becomes the latest update

        expected = {"created": [c, b, a], "updated": [a, c, b]}[sort]
        assert ids(api.list(sort=sort)) == [t["id"] for t in expected]
        assert ids(api.list(sort=sort, order="asc")) == [t["id"] for t in reversed(expected)]

    def test_title_sorts_ascending_by_default_and_ties_break_by_id(self, api: Api) -> None:
        b1, a, b2 = api.create(title="b"), api.create(title="a"), api.create(title="b")

        assert ids(api.list(sort="title")) == [a["id"], b1["id"], b2["id"]]
        assert ids(api.list(sort="title", order="desc")) == [b2["id"], b1["id"], a["id"]]

    def test_priority_orders_high_over_medium_over_low(self, api: Api) -> None:
        low = api.create(priority="low")
        high = api.create(priority="high")
        medium = api.create(priority="medium")

        assert ids(api.list(sort="priority")) == [low["id"], medium["id"], high["id"]]
        assert ids(api.list(sort="priority", order="desc")) == [high["id"], medium["id"], low["id"]]

    def test_tasks_without_a_due_date_come_last_in_either_order(self, api: Api) -> None:
        none = api.create()
        late = api.create(due_date="2027-03-01")
        early = api.create(due_date="2026-12-24")

        assert ids(api.list(sort="due_date")) == [early["id"], late["id"], none["id"]]
        assert ids(api.list(sort="due_date", order="desc")) == [late["id"], early["id"], none["id"]]

    def test_q_matches_title_or_description_ignoring_case(self, api: Api) -> None:
        by_title = api.create(title="Buy MILK")
        by_description = api.create(title="Shop", description="oat milk please")
        api.create(title="Unrelated")

        response = api.list(q="Milk", sort="created", order="asc")

        assert ids(response) == [by_title["id"], by_description["id"]]
        assert response.headers["x-total-count"] == "2"

    @pytest.mark.parametrize("q", ["%", "_", "\\", "50%_off\\"])
    def test_q_wildcards_are_literal(self, api: Api, q: str) -> None:
        literal = api.create(title="Sale: 50%_off\\ today")
        api.create(title="Plain title")

        assert ids(api.list(q=q)) == [literal["id"]]

    def test_limit_and_offset_page_while_the_count_ignores_them(self, api: Api) -> None:
        created = [api.create(title=f"t{i}") for i in range(5)]
        oldest_first = [t["id"] for t in created]

        page = api.list(sort="created", order="asc", limit=2, offset=1)

        assert ids(page) == oldest_first[1:3]
        assert page.headers["x-total-count"] == "5"
        assert ids(api.list(order="asc", offset=4)) == oldest_first[4:]
        assert ids(api.list(offset=5)) == []
        assert api.list(offset=9223372036854775807).json() == []

    def test_filters_combine(self, api: Api) -> None:
        api.create(title="milk", completed=True)
        wanted = api.create(title="milk")
        api.create(title="bread")

        response = api.list(q="milk", status="pending")

        assert ids(response) == [wanted["id"]]
        assert response.headers["x-total-count"] == "1"

    def test_only_the_users_own_tasks(self, api: Api, other_api: Api) -> None:
        mine = api.create(title="shared words")
        other_api.create(title="shared words")

        assert ids(api.list(q="shared")) == [mine["id"]]

    @pytest.mark.parametrize(
        "params",
        [
            pytest.param({"status": "done"}, id="status"),
            pytest.param({"sort": "owner"}, id="sort"),
            pytest.param({"order": "up"}, id="order"),
            pytest.param({"limit": 0}, id="limit-zero"),
            pytest.param({"limit": 501}, id="limit-too-big"),
            pytest.param({"limit": "ten"}, id="limit-not-int"),
            pytest.param({"offset": -1}, id="offset-negative"),
            pytest.param({"offset": 9223372036854775808}, id="offset-beyond-int64"),
            pytest.param({"q": ""}, id="q-empty"),
            pytest.param({"q": "x" * 201}, id="q-too-long"),
            pytest.param({"q": "a\u0000b"}, id="q-nul"),
        ],
    )
    def test_422_for_a_bad_parameter(self, api: Api, params: dict[str, Any]) -> None:
        problem = assert_problem(api.list(**params), 422)

        assert next(iter(params)) in problem["detail"]
