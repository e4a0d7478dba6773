from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.contract import assert_problem, assert_task


class TestCreateTask:
    def test_201_with_defaults_and_location(self, api: Api) -> None:
        before = datetime.now(UTC)
        response = api.request("POST", json={"title": "Buy milk"})

        assert response.status_code == 201
        task = response.json()
        assert_task(task)
        assert response.headers["location"] == f"/api/{api.user_id}/tasks/{task['id']}"
        assert task["user_id"] == api.user_id
        assert task["title"] == "Buy milk"
        assert task["description"] is None
        assert task["completed"] is False
        assert task["priority"] == "medium"
        assert task["due_date"] is None
        assert task["completed_at"] is None
        created = datetime.fromisoformat(task["created_at"])
        assert created.utcoffset() is not None
        assert created.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert before <= created <= datetime.now(UTC)
        assert task["updated_at"] == task["created_at"]
        assert api.get(task["id"]).json() == task

    def test_201_stores_every_field(self, api: Api) -> None:
        fields = {
            "title": "File the tax return",
            "description": "Scan the receipts first.",
            "priority": "high",
            "due_date": "2026-12-01",
        }
        task = api.create(**fields)

        assert {key: task[key] for key in fields} == fields
        assert api.get(task["id"]).json()["due_date"] == "2026-12-01"

    def test_created_completed_gets_completed_at(self, api: Api) -> None:
        task = api.create(completed=True)

        assert task["completed"] is True
        assert task["completed_at"] == task["created_at"]

    def test_unicode_title_round_trips(self, api: Api) -> None:
        task = api.create(title="Café ☕ 日本語 🚀")

        assert api.get(task["id"]).json()["title"] == "Café ☕ 日本語 🚀"

    @pytest.mark.parametrize(
        ("body", "fragment"),
        [
            pytest.param({}, "title", id="no-title"),
            pytest.param({"title": ""}, "title", id="empty-title"),
            pytest.param({"title": "   \t"}, "not only whitespace", id="blank-title"),
            pytest.param({"title": "x" * 201}, "too long", id="title-too-long"),
            pytest.param({"title": "a\u0000b"}, "NUL", id="nul-in-title"),
            pytest.param({"title": 5}, "not of type 'string'", id="title-not-string"),
            pytest.param({"title": None}, "title", id="title-null"),
            pytest.param(
                {"title": "t", "description": "x" * 1001}, "too long", id="long-description"
            ),
            pytest.param({"title": "t", "description": "\u0000"}, "NUL", id="nul-in-description"),
            pytest.param({"title": "t", "priority": "urgent"}, "is not one of", id="bad-priority"),
            pytest.param({"title": "t", "completed": "yes"}, "boolean", id="completed-not-bool"),
            pytest.param(
                {"title": "t", "due_date": "2026-02-30"}, "due_date", id="impossible-date"
            ),
            pytest.param(
                {"title": "t", "due_date": "20260101"}, "due_date", id="basic-date-format"
            ),
            pytest.param(
                {"title": "t", "due_date": "2026-01-01T00:00:00Z"},
                "due_date",
                id="datetime-as-date",
            ),
            pytest.param({"title": "t", "due_date": 1893456000}, "due_date", id="date-as-number"),
            pytest.param({"title": "t", "owner": "x"}, "owner", id="unknown-property"),
            pytest.param({"title": "t", "id": 7}, "id", id="id-is-read-only"),
            pytest.param(["title"], "object", id="array-body"),
        ],
    )
    def test_422_for_values_the_schema_rejects(self, api: Api, body: Any, fragment: str) -> None:
        problem = assert_problem(api.request("POST", json=body), 422)

        assert fragment in problem["detail"]
        assert api.list().headers["x-total-count"] == "0"

    @pytest.mark.parametrize(
        "raw",
        [
            pytest.param(b'{"title": ', id="truncated"),
            pytest.param(b"not json", id="not-json"),
            pytest.param(b'{"title": "\xff\xfe"}', id="not-utf8"),
            pytest.param(b'{"title": "\\ud800"}', id="lone-surrogate"),
            pytest.param(b'{"title": NaN}', id="nan-literal"),
            pytest.param(b"[" * 30_000 + b"]" * 30_000, id="deeply-nested"),
            pytest.param(b'{"title": "t", "priority": ' + b"9" * 5000 + b"}", id="huge-number"),
        ],
    )
    def test_400_for_a_body_that_is_not_json(self, api: Api, raw: bytes) -> None:
        response = api.request("POST", content=raw, headers={"Content-Type": "application/json"})

        assert_problem(response, 400)
        assert api.list().headers["x-total-count"] == "0"

    def test_400_for_a_missing_body(self, api: Api) -> None:
        response = api.request("POST", headers={"Content-Type": "application/json"})

        assert_problem(response, 400)

    def test_415_for_a_body_that_is_not_declared_json(self, api: Api) -> None:
        response = api.request("POST", content=b"title=x", headers={"Content-Type": "text/plain"})

        assert_problem(response, 415)
        assert api.list().headers["x-total-count"] == "0"

    def test_413_for_a_body_over_64_kib(self, api: Api) -> None:
        body = b'{"title": "t", "description": "' + b"x" * (64 * 1024) + b'"}'
        response = api.request("POST", content=body, headers={"Content-Type": "application/json"})

        assert_problem(response, 413)
        assert api.list().headers["x-total-count"] == "0"

    def test_413_for_an_oversized_body_sent_without_a_length(self, api: Api) -> None:
        def chunks() -> Any:
            yield b'{"title": "t", "description": "'
            for _ in range(80):
                yield b"x" * 1024
            yield b'"}'

        response = api.request(
            "POST", content=chunks(), headers={"Content-Type": "application/json"}
        )

        assert_problem(response, 413)
        assert api.list().headers["x-total-count"] == "0"
