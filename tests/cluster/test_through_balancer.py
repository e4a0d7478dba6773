"""The API's operations through HAProxy, each request landing on whichever instance
round-robin picks: every answer is checked against the contract, and what is stored is
read back through PostgreSQL itself, past PgBouncer."""

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from db.tasks import TASKS
from service.tokens import TokenVerifier
from tests.support.api import SECRET, Api
from tests.support.auth import OPERATIONS, assert_unauthorized, sign, valid_claims
from tests.support.contract import assert_problem, assert_task

pytestmark = pytest.mark.cluster


@pytest.fixture
def client(http: Callable[[str], httpx.Client], balancer_url: str) -> httpx.Client:
    return http(balancer_url)


def signed_in(client: httpx.Client) -> Api:
    user_id = f"user-{uuid.uuid4().hex[:12]}"
    return Api(client, user_id, TokenVerifier(SECRET).mint(user_id, 600))


def stored(engine: Engine, user_id: str) -> dict[int, dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(TASKS).where(TASKS.c.user_id == user_id))
        return {row.id: dict(row._mapping) for row in rows}


def test_create_list_get_update_complete_delete(
    client: httpx.Client, direct_engine: Engine
) -> None:
    api = signed_in(client)
    created = api.create(title="Buy milk", priority="high", due_date="2026-12-01")
    assert_task(created)
    response = api.get(created["id"])
    assert response.status_code == 200
    assert response.json() == created

    renamed = api.request("PUT", f"/{created['id']}", json={"title": "Buy oat milk"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["title"] == "Buy oat milk"
    assert renamed.json()["priority"] == "high"
    done = api.request("PATCH", f"/{created['id']}/complete")
    assert done.status_code == 200
    assert done.json()["completed"] is True
    second = api.create(title="Write letter")

    listed = api.list(status="pending")
    assert listed.status_code == 200
    assert [task["id"] for task in listed.json()] == [second["id"]]
    assert listed.headers["x-total-count"] == "1"
    row = stored(direct_engine, api.user_id)[created["id"]]
    assert (row["title"], row["completed"]) == ("Buy oat milk", True)

    assert api.request("DELETE", f"/{created['id']}").status_code == 204
    assert_problem(api.get(created["id"]), 404)
    assert set(stored(direct_engine, api.user_id)) == {second["id"]}


def test_an_invalid_body_is_refused_and_stores_nothing(
    client: httpx.Client, direct_engine: Engine
) -> None:
    api = signed_in(client)
    assert_problem(api.request("POST", json={"title": ""}), 422)
    assert_problem(
        api.request("POST", content=b"{", headers={"Content-Type": "application/json"}), 400
    )
    assert stored(direct_engine, api.user_id) == {}


@pytest.mark.parametrize(
    ("method", "path"), [p.values for p in OPERATIONS], ids=[p.id for p in OPERATIONS]
)
def test_every_operation_needs_a_valid_token(client: httpx.Client, method: str, path: str) -> None:
    user_id = f"user-{uuid.uuid4().hex[:12]}"
    url = f"/api/{user_id}/tasks{path}"
    assert_unauthorized(client.request(method, url), token_presented=False)
    forged = sign(valid_claims(user_id), key="another-secret-" + "x" * 32)
    assert_unauthorized(client.request(method, url, headers={"Authorization": f"Bearer {forged}"}))


def test_users_are_isolated_whichever_instance_answers(
    client: httpx.Client, direct_engine: Engine
) -> None:
    alice, bob = signed_in(client), signed_in(client)
    task = alice.create(title="Alice's")
    alices_task = f"/api/{alice.user_id}/tasks/{task['id']}"
    for _ in range(3):  # one request per instance, round-robin
        assert_problem(client.get(alices_task, headers=bob.headers), 403)
        assert_problem(bob.get(task["id"]), 404)
        assert_problem(bob.request("DELETE", f"/{task['id']}"), 404)
        assert bob.list().json() == []
    assert set(stored(direct_engine, alice.user_id)) == {task["id"]}
    assert stored(direct_engine, bob.user_id) == {}
