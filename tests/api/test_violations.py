"""Every 422 lists every violation in `errors`: a JSON Pointer into the body, or the name of
a parameter, beside the one-sentence `detail`; and nothing is stored."""

from typing import Any

import pytest
from connexion.json_schema import Draft4RequestValidator

from service.contract import SCHEMA_NAME
from service.patches.validation import FORMAT_CHECKER
from service.patches.violations import body_violations, pointer
from tests.support.api import Api
from tests.support.contract import assert_problem


def entries(response: Any) -> list[dict[str, str]]:
    problem = assert_problem(response, 422)
    errors: list[dict[str, str]] = problem["errors"]
    return errors


def by_location(errors: list[dict[str, str]]) -> dict[str, str]:
    return {error.get("pointer") or error["parameter"]: error["detail"] for error in errors}


class TestBody:
    def test_three_invalid_fields_and_an_unknown_one_give_four_entries(self, api: Api) -> None:
        body = {"title": "x" * 201, "priority": "urgent", "due_date": "2026-02-30", "category": 1}

        errors = entries(api.request("POST", json=body))

        assert len(errors) == 4
        assert by_location(errors) == {
            "#/title": "'" + "x" * 201 + "' is too long",
            "#/priority": "'urgent' is not one of ['low', 'medium', 'high']",
            "#/due_date": "'2026-02-30' is not a 'date'",
            "#/category": "not a field of TaskCreate",
        }
        assert api.list().headers["x-total-count"] == "0"

    def test_the_detail_is_still_one_sentence(self, api: Api) -> None:
        problem = assert_problem(api.request("POST", json={"title": "", "owner": "x"}), 422)

        assert problem["detail"] == (
            "body: Additional properties are not allowed ('owner' was unexpected)"
        )
        assert [error["pointer"] for error in problem["errors"]] == ["#/owner", "#/title"]

    def test_an_update_names_its_own_schema(self, api: Api) -> None:
        task = api.create(title="Untouched")

        response = api.request("PUT", f"/{task['id']}", json={"done": True, "title": None})

        assert by_location(entries(response)) == {
            "#/done": "not a field of TaskUpdate",
            "#/title": "None is not of type 'string'",
        }
        assert api.get(task["id"]).json() == task

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            pytest.param(["title"], {"#": "['title'] is not of type 'object'"}, id="not-an-object"),
            pytest.param({}, {"#/title": "'title' is a required property"}, id="missing-title"),
            pytest.param(
                {"a/b": 1, "~": 2, "two words": 3, "é": 4},
                {
                    "#/title": "'title' is a required property",
                    "#/a~1b": "not a field of TaskCreate",
                    "#/~0": "not a field of TaskCreate",
                    "#/two%20words": "not a field of TaskCreate",
                    "#/%C3%A9": "not a field of TaskCreate",
                },
                id="escaped-names",
            ),
        ],
    )
    def test_pointers_on_the_create_body(
        self, api: Api, body: Any, expected: dict[str, str]
    ) -> None:
        assert by_location(entries(api.request("POST", json=body))) == expected
        assert api.list().headers["x-total-count"] == "0"

    def test_a_json_null_body_is_the_body_itself(self, api: Api) -> None:
        response = api.request(
            "POST", content=b"null", headers={"Content-Type": "application/json"}
        )

        assert entries(response) == [{"detail": "None is not of type 'object'", "pointer": "#"}]
        assert api.list().headers["x-total-count"] == "0"


class TestParameters:
    def test_a_bad_limit_and_a_bad_status_give_two_parameter_entries(self, api: Api) -> None:
        api.create(title="Listed only when the query is right")

        errors = entries(api.list(limit=0, status="done"))

        assert errors == [
            {
                "detail": "'done' is not one of ['all', 'pending', 'completed']",
                "parameter": "status",
            },
            {"detail": "0 is less than the minimum of 1", "parameter": "limit"},
        ]

    def test_every_kind_of_parameter_violation_at_once(self, api: Api) -> None:
        errors = entries(api.list(limit="ten", order="up", stauts="completed"))

        assert by_location(errors) == {
            "stauts": "not a parameter of this operation",
            "order": "'up' is not one of ['asc', 'desc']",
            "limit": "'ten' is not of type 'integer'",
        }

    def test_a_bad_path_id(self, api: Api) -> None:
        errors = entries(api.request("DELETE", "/0"))

        assert errors == [{"detail": "0 is less than the minimum of 1", "parameter": "task_id"}]


class TestParametersAndBody:
    def test_both_are_reported_parameters_first(self, api: Api) -> None:
        response = api.request("POST", params={"draft": "1"}, json={"title": "", "tags": []})

        problem = assert_problem(response, 422)
        assert problem["detail"] == "query parameter 'draft': not a parameter of this operation"
        assert problem["errors"] == [
            {"detail": "not a parameter of this operation", "parameter": "draft"},
            {"detail": "not a field of TaskCreate", "pointer": "#/tags"},
            {"detail": "'' should be non-empty", "pointer": "#/title"},
        ]
        assert api.list().headers["x-total-count"] == "0"

    def test_bad_parameters_with_a_valid_body_store_nothing(self, api: Api) -> None:
        task = api.create(title="Kept")

        created = api.request("POST", params={"draft": "1"}, json={"title": "Not stored"})
        updated = api.request("PUT", "/abc", json={"title": "Not stored"})
        toggled = api.request("PATCH", f"/{task['id']}/complete", params={"now": "1"})

        assert by_location(entries(created)) == {"draft": "not a parameter of this operation"}
        assert by_location(entries(updated)) == {"task_id": "'abc' is not of type 'integer'"}
        assert by_location(entries(toggled)) == {"now": "not a parameter of this operation"}
        assert api.list().json() == [task]


# Nested objects and arrays: no request body of today's contract has one, so these run the
# reporting on schemas of that shape, as Connexion hands them over (named, `$ref`s inlined).
OWNER = {
    SCHEMA_NAME: "Owner",
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {"name": {"type": "string", "minLength": 1}},
}
NESTED = {
    SCHEMA_NAME: "Board",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "owner": OWNER,
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"title": {"type": "string", "minLength": 1}},
            },
        },
        "dates": {"type": "array", "items": {"type": "string", "format": "date"}},
    },
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"tags": ["ok", 5]}, {"#/tags/1": "5 is not of type 'string'"}, id="item"),
        pytest.param(
            {"tags": ["long", "ok", "also long"]},
            {"#/tags/0": "'long' is too long", "#/tags/2": "'also long' is too long"},
            id="two-items",
        ),
        pytest.param(
            {"owner": {}}, {"#/owner/name": "'name' is a required property"}, id="nested-required"
        ),
        pytest.param(
            {"owner": {"name": "", "email": "x"}},
            {"#/owner/email": "not a field of Owner", "#/owner/name": "'' should be non-empty"},
            id="nested-unknown-named",
        ),
        pytest.param(
            {"items": [{"title": ""}, {"title": "ok", "x/y": 1}]},
            {"#/items/0/title": "'' should be non-empty", "#/items/1/x~1y": "not a known field"},
            id="array-of-objects",
        ),
        pytest.param(
            {"dates": ["2026-13-01"]}, {"#/dates/0": "'2026-13-01' is not a 'date'"}, id="date-item"
        ),
        pytest.param({"tags": "a"}, {"#/tags": "'a' is not of type 'array'"}, id="not-an-array"),
        pytest.param(
            {"owner": "me", "extra": {"deep": 1}},
            {"#/extra": "not a field of Board", "#/owner": "'me' is not of type 'object'"},
            id="unknown-object-is-one-entry",
        ),
    ],
)
def test_nested_and_array_pointers(body: Any, expected: dict[str, str]) -> None:
    validator = Draft4RequestValidator(NESTED, format_checker=FORMAT_CHECKER)

    found = [violation.entry for violation in body_violations(validator.iter_errors(body))]

    assert by_location(found) == expected
    assert len(found) == len(expected)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param([], "#", id="the-body"),
        pytest.param(["title"], "#/title", id="member"),
        pytest.param(["tags", 0], "#/tags/0", id="array-index"),
        pytest.param(["a/b", "m~n"], "#/a~1b/m~0n", id="rfc6901-escapes"),
        pytest.param(["~1"], "#/~01", id="tilde-before-slash"),
        pytest.param([""], "#/", id="empty-name"),
        pytest.param(["50%", "a b", "ü", "#"], "#/50%25/a%20b/%C3%BC/%23", id="percent-encoded"),
        pytest.param(["a:b@c!$&'()*+,;="], "#/a:b@c!$&'()*+,;=", id="fragment-safe"),
    ],
)
def test_pointer(path: list[str | int], expected: str) -> None:
    assert pointer(path) == expected
