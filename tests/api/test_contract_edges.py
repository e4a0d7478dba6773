"""Edges the contract fuzzing found: each was a response the contract did not promise."""

import pytest

from tests.support.api import Api
from tests.support.contract import assert_problem


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        pytest.param("OPTIONS", "", "GET, HEAD, POST", id="collection"),
        pytest.param("POST", "/1", "DELETE, GET, HEAD, PATCH, PUT", id="task"),
        pytest.param("PUT", "/changes", "GET, HEAD", id="changes"),
        pytest.param("GET", "/1/complete", "PATCH", id="complete"),
    ],
)
def test_405_allows_every_method_of_the_path(api: Api, method: str, path: str, allow: str) -> None:
    response = api.request(method, path)

    assert_problem(response, 405)
    assert response.headers["allow"] == allow


def test_user_id_with_a_newline_is_routed_to_the_token_check(api: Api) -> None:
    response = api.client.get("/api/user%0Aid/tasks", headers=api.headers)

    assert_problem(response, 403)


def test_unknown_query_parameter_is_422(api: Api) -> None:
    api.create()

    body = assert_problem(api.list(stauts="completed"), 422)

    assert "stauts" in body["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("POST", "", id="create"),
        pytest.param("PUT", "/{id}", id="update"),
        pytest.param("PATCH", "/{id}/complete", id="complete"),
    ],
)
def test_json_null_body_is_422_and_changes_nothing(api: Api, method: str, path: str) -> None:
    task = api.create()
    headers = {"Content-Type": "application/json"}

    response = api.request(method, path.format(id=task["id"]), content=b"null", headers=headers)

    body = assert_problem(response, 422)
    assert "object" in body["detail"]
    assert api.list().json() == [task]


@pytest.mark.parametrize("title", ["\x1d", "\x1c\x1f", "\u3000", "\ufeff"])
def test_title_of_only_whitespace_is_422_whatever_the_regex_engine(api: Api, title: str) -> None:
    body = assert_problem(api.request("POST", json={"title": title}), 422)

    assert "not only whitespace" in body["detail"]
    assert api.list().json() == []
