"""Recurring tasks: completing one by any route creates its next occurrence, once."""

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.api import Api
from tests.support.contract import assert_problem, assert_task


def today(zone: str = "UTC") -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(zone)).date()


def next_weekday(weekday: int, after: date) -> date:
    """The first date after `after` (by at least a week) falling on `weekday` (0 = Monday)."""
    start = after + timedelta(days=7)
    return start + timedelta(days=(weekday - start.weekday()) % 7)


def occurrence_of(api: Api, task: dict[str, Any]) -> dict[str, Any]:
    assert task["next_occurrence_id"] is not None, task
    response = api.get(task["next_occurrence_id"])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert_task(body)
    return body


class TestNextOccurrence:
    def test_completing_creates_a_pending_copy_with_every_field(self, api: Api) -> None:
        due = next_weekday(0, today())
        task = api.create(
            title="Team meeting",
            description="Room 4",
            priority="high",
            tags=["work", "meetings"],
            due_date=due.isoformat(),
            due_time="09:30",
            time_zone="Europe/Berlin",
            recurrence="FREQ=WEEKLY;BYDAY=MO",
        )

        done = api.complete(task["id"], completed=True)

        assert done["completed"] is True
        following = occurrence_of(api, done)
        assert following["id"] != task["id"]
        assert following["completed"] is False
        assert following["completed_at"] is None
        assert following["due_date"] == (due + timedelta(days=7)).isoformat()
        for field in ("title", "description", "priority", "tags", "due_time", "time_zone"):
            assert following[field] == task[field], field
        assert following["recurrence"] == "FREQ=WEEKLY;BYDAY=MO"
        assert following["recurrence_from"] == "due"
        assert following["next_occurrence_id"] is None
        assert [t["id"] for t in api.all()] == [task["id"], following["id"]]
        assert api.get(task["id"]).json()["next_occurrence_id"] == following["id"]

    def test_weekly_on_monday_and_wednesday_completed_three_times(self, api: Api) -> None:
        monday = next_weekday(0, today())
        task = api.create(due_date=monday.isoformat(), recurrence="FREQ=WEEKLY;BYDAY=MO,WE")

        dates = []
        for _ in range(3):
            task = occurrence_of(api, api.complete(task["id"], completed=True))
            dates.append(task["due_date"])

        expected = [monday + timedelta(days=days) for days in (2, 7, 9)]
        assert dates == [day.isoformat() for day in expected]
        assert len(api.all()) == 4

    def test_count_two_stops_after_the_second(self, api: Api) -> None:
        due = today() + timedelta(days=5)
        first = api.create(due_date=due.isoformat(), recurrence="FREQ=DAILY;COUNT=2")

        second = occurrence_of(api, api.complete(first["id"], completed=True))
        last = api.complete(second["id"], completed=True)

        assert second["recurrence"] == "FREQ=DAILY;COUNT=1"
        assert second["due_date"] == (due + timedelta(days=1)).isoformat()
        assert last["next_occurrence_id"] is None
        assert len(api.all()) == 2

    def test_until_is_respected(self, api: Api) -> None:
        due = today() + timedelta(days=5)
        until = (due + timedelta(days=1)).strftime("%Y%m%d")
        first = api.create(due_date=due.isoformat(), recurrence=f"FREQ=DAILY;UNTIL={until}")

        second = occurrence_of(api, api.complete(first["id"], completed=True))
        last = api.complete(second["id"], completed=True)

        assert second["due_date"] == (due + timedelta(days=1)).isoformat()
        assert last["next_occurrence_id"] is None
        assert len(api.all()) == 2

    @pytest.mark.parametrize(
        ("rule", "expected"),
        [
            # RFC 5545: a month without a 31st is skipped...
            ("FREQ=MONTHLY;BYMONTHDAY=31", ["2027-03-31", "2027-05-31"]),
            ("FREQ=MONTHLY", ["2027-03-31", "2027-05-31"]),
            # ...and -1 is the last day of every month.
            ("FREQ=MONTHLY;BYMONTHDAY=-1", ["2027-02-28", "2027-03-31"]),
        ],
    )
    def test_a_monthly_rule_on_the_31st(self, api: Api, rule: str, expected: list[str]) -> None:
        task = api.create(due_date="2027-01-31", recurrence=rule)

        dates = []
        for _ in expected:
            task = occurrence_of(api, api.complete(task["id"]))
            dates.append(task["due_date"])

        assert dates == expected

    def test_a_daily_task_ten_days_overdue_is_next_due_today(self, api: Api) -> None:
        task = api.create(
            due_date=(today() - timedelta(days=10)).isoformat(), recurrence="FREQ=DAILY"
        )

        following = occurrence_of(api, api.complete(task["id"], completed=True))

        assert following["due_date"] == today().isoformat()

    def test_today_is_the_task_time_zones_today(self, api: Api) -> None:
        zone = "Pacific/Kiritimati"  # UTC+14: its today is often UTC's tomorrow
        task = api.create(
            due_date=(today(zone) - timedelta(days=10)).isoformat(),
            recurrence="FREQ=DAILY",
            time_zone=zone,
        )

        following = occurrence_of(api, api.complete(task["id"], completed=True))

        assert following["due_date"] == today(zone).isoformat()

    def test_from_completion_every_three_days_is_due_three_days_after_today(self, api: Api) -> None:
        task = api.create(
            due_date=(today() - timedelta(days=5)).isoformat(),
            recurrence="FREQ=DAILY;INTERVAL=3",
            recurrence_from="completion",
        )

        following = occurrence_of(api, api.complete(task["id"], completed=True))

        assert following["due_date"] == (today() + timedelta(days=3)).isoformat()
        assert following["recurrence_from"] == "completion"

    def test_the_reminder_keeps_its_offset_on_the_wall_clock(self, api: Api) -> None:
        # 08:00 in Berlin the day before, across the change to summer time (2027-03-28).
        task = api.create(
            due_date="2027-03-23",
            recurrence="FREQ=WEEKLY",
            time_zone="Europe/Berlin",
            remind_at="2027-03-22T08:00:00+01:00",
        )

        following = occurrence_of(api, api.complete(task["id"], completed=True))

        assert task["remind_at"] == "2027-03-22T07:00:00+00:00"
        assert following["due_date"] == "2027-03-30"
        assert following["remind_at"] == "2027-03-29T06:00:00+00:00"


class TestOnlyOnce:
    def test_a_retried_completion_creates_one_occurrence(self, api: Api) -> None:
        task = api.create(due_date=today().isoformat(), recurrence="FREQ=DAILY")

        first = api.complete(task["id"], completed=True)
        retried = api.complete(task["id"], completed=True)

        assert retried["next_occurrence_id"] == first["next_occurrence_id"]
        assert retried["completed_at"] == first["completed_at"]
        assert len(api.all()) == 2

    def test_reopening_and_completing_again_creates_nothing_more(self, api: Api) -> None:
        task = api.create(due_date=today().isoformat(), recurrence="FREQ=DAILY")
        created = api.complete(task["id"])["next_occurrence_id"]

        reopened = api.complete(task["id"])
        again = api.complete(task["id"])

        assert reopened["completed"] is False
        assert reopened["next_occurrence_id"] == created
        assert again["completed"] is True
        assert again["next_occurrence_id"] == created
        assert len(api.all()) == 2

    def test_update_with_completed_true_creates_it_too(self, api: Api) -> None:
        task = api.create(due_date=today().isoformat(), recurrence="FREQ=DAILY")

        response = api.request("PUT", f"/{task['id']}", json={"completed": True})

        assert response.status_code == 200, response.text
        following = occurrence_of(api, response.json())
        assert following["due_date"] == (today() + timedelta(days=1)).isoformat()
        assert len(api.all()) == 2

    def test_an_update_that_keeps_it_completed_creates_nothing(self, api: Api) -> None:
        task = api.create(due_date=today().isoformat(), recurrence="FREQ=DAILY", completed=True)

        response = api.request("PUT", f"/{task['id']}", json={"completed": True, "title": "x"})

        assert response.status_code == 200, response.text
        assert response.json()["next_occurrence_id"] is None
        assert len(api.all()) == 1

    def test_creating_a_completed_task_creates_no_occurrence(self, api: Api) -> None:
        task = api.create(due_date=today().isoformat(), recurrence="FREQ=DAILY", completed=True)

        assert task["next_occurrence_id"] is None
        assert len(api.all()) == 1

    def test_a_task_without_a_rule_creates_nothing(self, api: Api) -> None:
        task = api.create(due_date=today().isoformat())

        assert api.complete(task["id"])["next_occurrence_id"] is None
        assert len(api.all()) == 1


class TestRuleValidation:
    @pytest.mark.parametrize(
        "fields",
        [
            {"recurrence": "FREQ=DAILY"},  # no due date
            {"due_date": "2026-12-01", "recurrence": "FREQ=DAILY;UNTIL=20261130"},
            {"due_date": "2026-12-01", "recurrence": "FREQ=DAILY;UNTIL=20261399"},
            {"due_date": "2026-12-01", "recurrence": "FREQ=HOURLY"},
            {"due_date": "2026-12-01", "recurrence": "FREQ=DAILY;BYDAY=MO"},
            {"due_date": "2026-12-01", "recurrence": "FREQ=WEEKLY;BYMONTHDAY=1"},
            {"due_date": "2026-12-01", "recurrence": "FREQ=DAILY;COUNT=0"},
            {"due_date": "2026-12-01", "recurrence": "FREQ=DAILY;COUNT=2;UNTIL=20270101"},
            {"due_date": "2026-12-01", "recurrence": "FREQ=DAILY;INTERVAL=1000"},
            {"due_date": "2026-12-01", "recurrence": "freq=daily"},
            {"due_date": "2026-12-01", "recurrence": "FREQ=DAILY", "recurrence_from": "now"},
        ],
    )
    def test_422_and_nothing_stored(self, api: Api, fields: dict[str, Any]) -> None:
        response = api.request("POST", json={"title": "t", **fields})

        assert_problem(response, 422)
        assert api.all() == []

    def test_clearing_the_due_date_of_a_recurring_task_is_422(self, api: Api) -> None:
        task = api.create(due_date="2026-12-01", recurrence="FREQ=DAILY")

        response = api.request("PUT", f"/{task['id']}", json={"due_date": None})

        assert "due_date" in assert_problem(response, 422)["detail"]
        assert api.get(task["id"]).json() == task

    def test_a_rule_is_checked_against_the_stored_due_date(self, api: Api) -> None:
        task = api.create(due_date="2026-12-01")

        bad = api.request("PUT", f"/{task['id']}", json={"recurrence": "FREQ=DAILY;UNTIL=20261101"})
        good = api.request("PUT", f"/{task['id']}", json={"recurrence": "FREQ=DAILY;COUNT=3"})

        assert_problem(bad, 422)
        assert good.status_code == 200, good.text
        assert api.get(task["id"]).json()["recurrence"] == "FREQ=DAILY;COUNT=3"
