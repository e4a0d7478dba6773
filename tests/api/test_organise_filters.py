"""listTasks filters (tag, priority, due dates, reminders), due times, time zones and
reminders on a task, and the due-date order with times."""

from typing import Any

import pytest

from tests.support.api import Api
from tests.support.contract import assert_problem


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [task["id"] for task in response.json()]


class TestFilters:
    def test_tag_matches_tasks_carrying_all_the_given_tags(self, api: Api, other_api: Api) -> None:
        both = api.create(tags=["work", "urgent"])
        work = api.create(tags=["work"])
        api.create(tags=["urgent"])
        other_api.create(tags=["work", "urgent"])

        only_work = api.list(tag="Work", sort="created", order="asc")
        all_of = api.list(tag=["work", "URGENT"])

        assert ids(only_work) == [both["id"], work["id"]]
        assert only_work.headers["x-total-count"] == "2"
        assert ids(all_of) == [both["id"]]
        assert all_of.headers["x-total-count"] == "1"
        assert ids(api.list(tag=["work", "nothing"])) == []

    def test_a_tag_with_a_comma_is_one_tag(self, api: Api) -> None:
        comma = api.create(tags=["a,b"])
        api.create(tags=["a", "b"])

        assert ids(api.list(tag="a,b")) == [comma["id"]]
        assert ids(api.list(tag=["a,b", "A,B "])) == [comma["id"]]
        assert ids(api.list(tag="a,")) == []

    def test_priority_matches_any_of_the_given_levels(self, api: Api) -> None:
        low, medium, high = (api.create(priority=p) for p in ("low", "medium", "high"))

        assert ids(api.list(priority="high")) == [high["id"]]
        response = api.list(priority=["low", "high"], sort="priority")
        assert ids(response) == [low["id"], high["id"]]
        assert response.headers["x-total-count"] == "2"
        assert medium["id"] not in ids(api.list(priority=["low", "high"]))

    def test_due_from_and_due_to_are_inclusive_and_skip_undated(self, api: Api) -> None:
        before = api.create(due_date="2026-11-30")
        first = api.create(due_date="2026-12-01")
        last = api.create(due_date="2026-12-07")
        api.create(due_date="2026-12-08")
        api.create()

        week = api.list(due_from="2026-12-01", due_to="2026-12-07", sort="due_date")

        assert ids(week) == [first["id"], last["id"]]
        assert week.headers["x-total-count"] == "2"
        assert ids(api.list(due_to="2026-11-30")) == [before["id"]]
        assert len(ids(api.list(due_from="2026-12-01"))) == 3

    def test_overdue_is_pending_due_before_today(self, api: Api) -> None:
        overdue = api.create(due_date="2026-01-01")
        api.create(due_date="2026-01-01", completed=True)
        api.create(due_date="2099-01-01")

        assert ids(api.list(status="pending", due_to="2026-06-01")) == [overdue["id"]]

    def test_remind_before_matches_reminders_at_or_before_it(self, api: Api) -> None:
        at = api.create(remind_at="2026-12-01T08:00:00Z")
        earlier = api.create(remind_at="2026-12-01T09:30:00+02:00")  # 07:30 UTC
        api.create(remind_at="2026-12-01T08:00:01Z")
        api.create()

        response = api.list(remind_before="2026-12-01T09:00:00+01:00", sort="created", order="asc")

        assert ids(response) == [at["id"], earlier["id"]]
        assert response.headers["x-total-count"] == "2"

    def test_every_filter_at_once_with_q_status_sort_and_paging(self, api: Api) -> None:
        matching = [
            api.create(
                title=f"Report {n}",
                tags=["work", "q4"],
                priority="high" if n % 2 else "medium",
                due_date=f"2026-12-0{n}",
                remind_at="2026-11-30T08:00:00Z",
            )
            for n in range(1, 6)
        ]
        api.create(title="Report done", tags=["work", "q4"], due_date="2026-12-02", completed=True)
        api.create(title="Report low", tags=["work", "q4"], due_date="2026-12-02", priority="low")
        api.create(title="Report untagged", due_date="2026-12-02", priority="high")
        api.create(title="Invoice", tags=["work", "q4"], due_date="2026-12-02", priority="high")
        api.create(title="Report late", tags=["work", "q4"], due_date="2026-12-09")

        filters = {
            "q": "report",
            "status": "pending",
            "tag": ["work", "q4"],
            "priority": ["high", "medium"],
            "due_from": "2026-12-01",
            "due_to": "2026-12-08",
            "remind_before": "2026-12-01T00:00:00Z",
            "sort": "due_date",
            "order": "desc",
        }
        first_page = api.list(**filters, limit=2)
        second_page = api.list(**filters, limit=2, offset=2)
        past_the_end = api.list(**filters, limit=2, offset=10)

        expected = [task["id"] for task in reversed(matching)]
        assert ids(first_page) + ids(second_page) == expected[:4]
        assert ids(past_the_end) == []
        for page in (first_page, second_page, past_the_end):
            assert page.headers["x-total-count"] == "5"

    def test_remind_before_beyond_the_utc_range_is_before_or_after_everything(
        self, api: Api
    ) -> None:
        task = api.create(remind_at="2026-12-01T08:00:00Z")

        assert ids(api.list(remind_before="0001-01-01T00:00:00+01:00")) == []
        assert ids(api.list(remind_before="9999-12-31T23:59:59-01:00")) == [task["id"]]
        assert ids(api.list(remind_before="2026-12-01T08:00:60Z")) == [task["id"]]

    @pytest.mark.parametrize(
        "params",
        [
            {"priority": "urgent"},
            {"due_from": "2026-02-30"},
            {"due_to": "tomorrow"},
            {"remind_before": "2026-12-01T08:00:00"},  # no offset
            {"tag": ""},
            {"tag": "x" * 51},
            {"tag": [str(n) for n in range(21)]},
        ],
    )
    def test_bad_filters_are_422(self, api: Api, params: dict[str, Any]) -> None:
        assert_problem(api.list(**params), 422)


class TestDueTimes:
    def test_due_time_time_zone_and_reminder_are_stored(self, api: Api) -> None:
        task = api.create(
            due_date="2026-12-01",
            due_time="14:30",
            time_zone="America/New_York",
            remind_at="2026-12-01T14:00:00-05:00",
        )

        assert task["due_time"] == "14:30"
        assert task["time_zone"] == "America/New_York"
        assert task["remind_at"] == "2026-12-01T19:00:00+00:00"
        assert api.get(task["id"]).json() == task

    def test_clearing_the_due_date_clears_the_due_time(self, api: Api) -> None:
        task = api.create(due_date="2026-12-01", due_time="09:00")

        response = api.request("PUT", f"/{task['id']}", json={"due_date": None})

        assert response.status_code == 200, response.text
        assert response.json()["due_time"] is None
        assert api.get(task["id"]).json()["due_time"] is None

    def test_a_due_time_can_be_added_to_a_stored_due_date(self, api: Api) -> None:
        task = api.create(due_date="2026-12-01")

        response = api.request("PUT", f"/{task['id']}", json={"due_time": "07:15"})

        assert response.status_code == 200, response.text
        assert api.get(task["id"]).json()["due_time"] == "07:15"

    @pytest.mark.parametrize(
        "fields",
        [
            {"due_time": "09:00"},  # no due date
            {"due_date": "2026-12-01", "due_time": "24:00"},
            {"due_date": "2026-12-01", "due_time": "9:00"},
            {"due_date": "2026-12-01", "due_time": "09:00:00"},
            {"time_zone": "Mars/Olympus"},
            {"time_zone": "../../etc/passwd"},
            {"time_zone": ""},
            {"remind_at": "2026-12-01"},
            {"remind_at": "2026-12-01T08:00:00"},
            {"remind_at": "9999-12-31T23:00:00-05:00"},  # past year 9999 in UTC
        ],
    )
    def test_422_and_nothing_stored(self, api: Api, fields: dict[str, Any]) -> None:
        assert_problem(api.request("POST", json={"title": "t", **fields}), 422)
        assert api.all() == []

    def test_a_due_time_on_a_task_without_a_date_is_422_and_changes_nothing(self, api: Api) -> None:
        task = api.create()

        response = api.request("PUT", f"/{task['id']}", json={"due_time": "09:00", "title": "x"})

        assert "due_date" in assert_problem(response, 422)["detail"]
        assert api.get(task["id"]).json() == task

    def test_sorting_by_due_date_puts_all_day_before_timed_then_by_time(self, api: Api) -> None:
        late = api.create(due_date="2026-12-01", due_time="18:00")
        undated = api.create()
        early = api.create(due_date="2026-12-01", due_time="08:05")
        all_day = api.create(due_date="2026-12-01")
        next_day = api.create(due_date="2026-12-02")

        ascending = [all_day, early, late, next_day, undated]
        descending = [next_day, late, early, all_day, undated]
        assert ids(api.list(sort="due_date")) == [task["id"] for task in ascending]
        assert ids(api.list(sort="due_date", order="desc")) == [task["id"] for task in descending]
