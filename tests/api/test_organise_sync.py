"""Tags, times and recurrence meet versions, ETags, Idempotency-Key, PATCH and the feed."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tests.support.api import SECRET, Api
from tests.support.contract import assert_conforms, assert_problem, assert_task

MakeClient = Callable[..., TestClient]
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def feed(api: Api, cursor: str | None = None) -> dict[str, Any]:
    response = api.request("GET", "/changes", params={"cursor": cursor} if cursor else {})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert_conforms(body, "TaskChanges")
    return body


def patch(api: Api, task_id: int, body: object, **headers: str) -> httpx.Response:
    return api.request(
        "PATCH", f"/{task_id}", content=json.dumps(body), headers={**MERGE_PATCH, **headers}
    )


def due_in(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def recurring(api: Api) -> dict[str, Any]:
    return api.create(
        title="Water plants",
        tags=["home"],
        due_date=due_in(2),
        due_time="08:00",
        time_zone="Europe/Berlin",
        recurrence="FREQ=DAILY;COUNT=3",
    )


class TestTheFeedCarriesTheNewFields:
    def test_a_task_in_the_feed_is_the_task_get_task_answers(self, api: Api) -> None:
        task = recurring(api)

        (change,) = feed(api)["changes"]

        assert change["task"] == api.get(task["id"]).json()
        assert change["task"]["tags"] == ["home"]
        assert change["task"]["due_time"] == "08:00"


class TestTagWritesAreChanges:
    def test_a_rename_stamps_every_task_it_touches_each_at_its_own_position(self, api: Api) -> None:
        one, two = api.create(title="one", tags=["work"]), api.create(title="two", tags=["work"])
        untouched = api.create(title="three", tags=["home"])
        cursor = feed(api)["cursor"]

        response = api.tags("PUT", "/work", json={"name": "job"})

        assert response.status_code == 200, response.text
        changes = feed(api, cursor)["changes"]
        assert [change["id"] for change in changes] == [one["id"], two["id"]]
        for before, change in zip([one, two], changes, strict=True):
            stored = api.get(before["id"])
            assert change["task"] == stored.json()
            assert stored.json()["version"] == before["version"] + 1
            assert stored.json()["tags"] == ["job"]
            assert stored.json()["updated_at"] > before["updated_at"]
            assert stored.headers["etag"] == f'"{before["version"] + 1}"'
        assert api.get(untouched["id"]).json() == untouched
        # A page of one ends between the two: the second is not skipped.
        first = api.request("GET", "/changes", params={"cursor": cursor, "limit": 1}).json()
        rest = feed(api, first["cursor"])["changes"]
        assert [c["id"] for c in first["changes"] + rest] == [one["id"], two["id"]]

    def test_a_tag_delete_bumps_the_versions_it_touches(self, api: Api) -> None:
        task = api.create(title="one", tags=["work", "home"])
        cursor = feed(api)["cursor"]

        assert api.tags("DELETE", "/work").status_code == 204

        stored = api.get(task["id"]).json()
        assert (stored["tags"], stored["version"]) == (["home"], 2)
        assert [c["task"] for c in feed(api, cursor)["changes"]] == [stored]

    def test_if_match_with_the_etag_from_before_a_rename_is_412(self, api: Api) -> None:
        task = api.create(title="one", tags=["work"])
        api.tags("PUT", "/work", json={"name": "job"})

        response = patch(api, task["id"], {"title": "lost"}, **{"If-Match": '"1"'})

        assert_problem(response, 412)
        assert response.headers["etag"] == '"2"'
        assert api.get(task["id"]).json()["title"] == "one"


class TestCompletionByAnyRoute:
    def assert_one_occurrence(self, api: Api, task: dict[str, Any], cursor: str) -> None:
        done = api.get(task["id"]).json()
        occurrence = api.get(done["next_occurrence_id"]).json()
        assert done["version"] == task["version"] + 1
        assert (occurrence["version"], occurrence["completed"]) == (1, False)
        assert occurrence["tags"] == ["home"]
        assert occurrence["recurrence"] == "FREQ=DAILY;COUNT=2"
        changes = feed(api, cursor)["changes"]
        # The completed task, then the occurrence at a position of its own.
        assert [c["task"] for c in changes] == [done, occurrence]
        assert api.list().headers["x-total-count"] == "2"

    def test_patch_task_with_completed_true(self, api: Api) -> None:
        task = recurring(api)
        cursor = feed(api)["cursor"]

        response = patch(api, task["id"], {"completed": True}, **{"If-Match": '"1"'})

        assert response.status_code == 200, response.text
        assert_task(response.json())
        assert response.headers["etag"] == '"2"'
        self.assert_one_occurrence(api, task, cursor)

    def test_update_task_with_completed_true(self, api: Api) -> None:
        task = recurring(api)
        cursor = feed(api)["cursor"]

        response = api.request("PUT", f"/{task['id']}", json={"completed": True})

        assert response.status_code == 200, response.text
        self.assert_one_occurrence(api, task, cursor)

    def test_complete_task_retried_with_its_key_replays_and_creates_nothing_more(
        self, api: Api
    ) -> None:
        task = recurring(api)
        cursor = feed(api)["cursor"]
        key = {"Idempotency-Key": "complete-water-plants"}

        first = api.request("PATCH", f"/{task['id']}/complete", headers=key)
        retry = api.request("PATCH", f"/{task['id']}/complete", headers=key)

        assert first.status_code == retry.status_code == 200
        assert retry.json() == first.json()
        assert retry.headers["idempotent-replayed"] == "true"
        assert first.json()["completed"] is True
        self.assert_one_occurrence(api, task, cursor)

    def test_a_stale_if_match_completes_nothing_and_creates_nothing(self, api: Api) -> None:
        task = recurring(api)
        patch(api, task["id"], {"title": "Water the plants"})

        response = api.request(
            "PATCH",
            f"/{task['id']}/complete",
            json={"completed": True},
            headers={"If-Match": '"1"'},
        )

        assert_problem(response, 412)
        stored = api.get(task["id"]).json()
        assert (stored["completed"], stored["next_occurrence_id"], stored["version"]) == (
            False,
            None,
            2,
        )
        assert api.list().headers["x-total-count"] == "1"


class TestPatchTaskTakesTheNewFields:
    def test_sets_tags_time_zone_reminder_and_rule(self, api: Api) -> None:
        task = api.create(title="t", due_date=due_in(3))

        response = patch(
            api,
            task["id"],
            {
                "tags": ["Work", "x"],
                "due_time": "17:45",
                "time_zone": "America/New_York",
                "remind_at": "2030-01-01T12:00:00+01:00",
                "recurrence": "FREQ=WEEKLY",
                "recurrence_from": "completion",
            },
        )

        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["tags"], body["due_time"], body["time_zone"]) == (
            ["work", "x"],
            "17:45",
            "America/New_York",
        )
        assert body["remind_at"] == "2030-01-01T11:00:00+00:00"
        assert (body["recurrence"], body["recurrence_from"], body["version"]) == (
            "FREQ=WEEKLY",
            "completion",
            2,
        )
        assert api.get(task["id"]).json() == body

    def test_null_clears_and_clearing_the_date_clears_its_time(self, api: Api) -> None:
        task = api.create(title="t", tags=["a"], due_date=due_in(3), due_time="09:00")

        response = patch(api, task["id"], {"due_date": None, "tags": []})

        assert response.status_code == 200, response.text
        stored = api.get(task["id"]).json()
        assert (stored["due_date"], stored["due_time"], stored["tags"]) == (None, None, [])

    def test_a_time_without_a_date_is_422_with_its_pointer_and_changes_nothing(
        self, api: Api
    ) -> None:
        task = api.create(title="t")

        response = patch(api, task["id"], {"due_time": "09:00"})

        problem = assert_problem(response, 422)
        assert problem["errors"] == [{"detail": problem["detail"], "pointer": "#/due_time"}]
        assert api.get(task["id"]).json() == task
        assert feed(api)["changes"] == [{"id": task["id"], "deleted": False, "task": task}]


class TestTheQuota:
    @pytest.fixture
    def api(self, client_with: MakeClient, user_id: str, token_for: Callable[..., str]) -> Api:
        """A user allowed one task."""
        client = client_with(better_auth_secret=SECRET, max_tasks_per_user=1)
        return Api(client, user_id, token_for(user_id))

    def test_a_create_with_tags_at_the_quota_is_409_and_stores_no_tags(self, api: Api) -> None:
        api.create(title="one", tags=["work"])

        refused = api.request("POST", json={"title": "two", "tags": ["home", "work"]})

        assert_problem(refused, 409)
        assert api.tags().json() == [{"name": "work", "count": 1}]
        assert [change["task"]["title"] for change in feed(api)["changes"]] == ["one"]

    def test_a_recurring_completion_at_the_quota_still_creates_its_occurrence(
        self, api: Api
    ) -> None:
        # The quota bounds what a client creates; a completion is not refused for it.
        task = recurring(api)

        done = api.complete(task["id"], completed=True)

        assert done["next_occurrence_id"] is not None
        assert api.list().headers["x-total-count"] == "2"
