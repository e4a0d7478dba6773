"""What the security review found, each pinned in-process on SQLite and PostgreSQL:
media types and charsets, one parse, nesting depth, typed claims, the Location of a user id
that is not Latin-1, the task quota, response headers, the console switch and the fields
`db/` writes (docs/security.md lists the findings)."""

import gc
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from db import tasks
from db.engine import current_engine, transaction
from service.app import GC_THRESHOLDS
from tests.support.api import SECRET, Api
from tests.support.auth import sign, valid_claims
from tests.support.contract import assert_problem, assert_task

MakeClient = Callable[..., TestClient]


def post_raw(api: Api, content: bytes, content_type: str) -> Any:
    return api.request("POST", content=content, headers={"Content-Type": content_type})


class TestMediaTypes:
    @pytest.mark.parametrize(
        "content_type",
        [
            "Application/json",
            "application/JSON",
            "APPLICATION/JSON; Charset=UTF-8",
            'application/json; charset="utf-8"',
            "application/json;charset=UTF8",
        ],
    )
    def test_json_in_any_letter_case_is_json(self, api: Api, content_type: str) -> None:
        created = post_raw(api, b'{"title": "Mixed case"}', content_type)
        refused = post_raw(api, b'{"title": ""}', content_type)

        assert created.status_code == 201, created.text
        assert_task(created.json())
        assert created.json()["title"] == "Mixed case"
        assert_problem(refused, 422)
        assert [t["title"] for t in api.list().json()] == ["Mixed case"]

    @pytest.mark.parametrize("charset", ["hz", "utf-16", "latin-1", "utf-7", "nonsense"])
    def test_a_charset_other_than_utf8_is_415_and_stores_nothing(
        self, api: Api, charset: str
    ) -> None:
        description = "~{" + "0" * 1996 + "~}"
        body = json.dumps({"title": "x", "description": description}).encode()

        response = post_raw(api, body, f"application/json;charset={charset}")

        assert "UTF-8" in assert_problem(response, 415)["detail"]
        assert api.list().headers["x-total-count"] == "0"

    def test_a_charset_on_an_update_is_judged_too(self, api: Api) -> None:
        task = api.create(title="Kept")
        response = api.request(
            "PUT",
            f"/{task['id']}",
            content=b'{"title": "x"}',
            headers={"Content-Type": "application/json; charset=hz"},
        )

        assert_problem(response, 415)
        assert api.get(task["id"]).json()["title"] == "Kept"

    def test_the_handler_stores_the_object_the_validator_accepted(self, api: Api) -> None:
        # Duplicate keys: the parser keeps the last; so does what the handler receives.
        body = b'{"title": "first", "title": "second", "priority": "low", "priority": "high"}'

        created = post_raw(api, body, "application/json")

        assert created.status_code == 201
        assert (created.json()["title"], created.json()["priority"]) == ("second", "high")
        stored = api.get(created.json()["id"]).json()
        assert (stored["title"], stored["priority"]) == ("second", "high")


class TestNesting:
    @pytest.mark.parametrize("depth", [33, 900, 1000, 20_000])
    def test_deep_nesting_is_400_before_any_recursion(self, api: Api, depth: int) -> None:
        body = b'{"title": "deep", "description": ' + b"[" * depth + b"]" * depth + b"}"

        response = post_raw(api, body, "application/json")

        assert "nested more than 32 levels" in assert_problem(response, 400)["detail"]
        assert api.list().headers["x-total-count"] == "0"

    def test_brackets_inside_strings_do_not_count(self, api: Api) -> None:
        title = '[[[[{{{{\\"' * 20
        body = json.dumps({"title": title, "description": "]" * 100}).encode()

        created = post_raw(api, body, "application/json")

        assert created.status_code == 201, created.text
        assert created.json()["title"] == title


class TestClaims:
    @pytest.mark.parametrize("exp", ["9999999999", True, [1], {"n": 1}, None])
    def test_a_wrong_typed_exp_is_401(self, client: TestClient, user_id: str, exp: Any) -> None:
        token = sign(valid_claims(user_id, exp=exp))

        response = client.get(f"/api/{user_id}/tasks", headers={"Authorization": f"Bearer {token}"})

        assert_problem(response, 401)


class TestLocation:
    @pytest.mark.parametrize("user_id", ["ユーザー", "user€", "a b", "x%y", "a@b:c"])
    def test_location_is_percent_encoded_and_resolves(
        self, client: TestClient, token_for: Callable[..., str], user_id: str
    ) -> None:
        api = Api(client, user_id, token_for(user_id))
        for task in api.list().json():
            api.request("DELETE", f"/{task['id']}")

        created = api.request("POST", json={"title": "Unicode owner"})

        assert created.status_code == 201, created.text
        location = created.headers["location"]
        location.encode("ascii")
        assert client.get(location, headers=api.headers).json() == created.json()
        assert api.list().headers["x-total-count"] == "1"


class TestQuota:
    def test_a_create_beyond_the_quota_is_409_and_stores_nothing(
        self, client_with: MakeClient, user_id: str, token_for: Callable[..., str]
    ) -> None:
        api = Api(
            client_with(better_auth_secret=SECRET, max_tasks_per_user=2),
            user_id,
            token_for(user_id),
        )
        api.create(title="one")
        api.create(title="two")

        refused = api.request("POST", json={"title": "three"})

        assert "2 tasks" in assert_problem(refused, 409)["detail"]
        assert [t["title"] for t in api.list(sort="title").json()] == ["one", "two"]
        api.request("DELETE", f"/{api.list().json()[0]['id']}")
        assert api.request("POST", json={"title": "three"}).status_code == 201

    def test_the_check_and_the_insert_are_one_statement(self, engine: Engine, user_id: str) -> None:
        assert tasks.max_tasks_per_user.get() == 10_000  # the default
        bound = current_engine.set(engine), tasks.max_tasks_per_user.set(0)
        try:
            with transaction() as connection, pytest.raises(tasks.TaskQuotaExceededError):
                tasks.create(connection, user_id, {"title": "over"})
            with transaction() as connection:
                _, total = tasks.list_page(
                    connection,
                    user_id,
                    status="all",
                    sort="created",
                    order=None,
                    q=None,
                    limit=10,
                    offset=0,
                )
        finally:
            current_engine.reset(bound[0])
            tasks.max_tasks_per_user.reset(bound[1])
        assert total == 0


class TestHeaders:
    def test_every_answer_says_nosniff_and_authenticated_ones_keep_out_of_shared_caches(
        self, api: Api, client: TestClient
    ) -> None:
        task = api.create(title="Private")
        answers = [
            api.list(),
            api.get(task["id"]),
            api.get(999_999_999),
            api.request("POST", json={"title": ""}),
            client.get(f"/api/{api.user_id}/tasks", headers={"Authorization": "Bearer x"}),
        ]
        public = [client.get("/health"), client.get("/api/openapi.json")]

        for response in answers:
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["cache-control"] == "private, no-cache"
        for response in public:
            assert response.headers["x-content-type-options"] == "nosniff"
            assert "cache-control" not in response.headers

    def test_swagger_ui_can_be_turned_off(self, client_with: MakeClient) -> None:
        off = client_with(better_auth_secret=SECRET, swagger_ui=False)
        on = client_with(better_auth_secret=SECRET)

        assert off.get("/api/ui/").status_code == 404
        assert on.get("/api/ui/").status_code == 200
        assert off.get("/api/openapi.json").status_code == 200


class TestWrites:
    def test_an_update_writes_only_the_contracts_fields(self, api: Api, engine: Engine) -> None:
        task = api.create(title="Owned")
        token = current_engine.set(engine)
        try:
            with transaction() as connection:
                changes = {
                    "title": "Renamed",
                    "user_id": "someone-else",
                    "id": 7,
                    "created_at": None,
                }
                row = tasks.update_fields(connection, api.user_id, task["id"], changes)
        finally:
            current_engine.reset(token)

        assert row is not None
        stored = api.get(task["id"]).json()
        assert (stored["title"], stored["user_id"], stored["id"]) == (
            "Renamed",
            api.user_id,
            task["id"],
        )
        assert stored["created_at"] == task["created_at"]


class TestHeap:
    def test_a_started_app_keeps_its_start_up_objects_out_of_the_cyclic_collector(
        self, client_with: MakeClient
    ) -> None:
        with client_with(better_auth_secret=SECRET) as client:
            assert client.get("/health").json() == {"status": "ok"}
            assert gc.get_freeze_count() > 10_000
            assert gc.get_threshold() == GC_THRESHOLDS
