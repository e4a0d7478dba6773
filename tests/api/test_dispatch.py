"""`service.dispatch` answers exactly as Connexion's own app does: the same requests, through
the same middleware stack, ending once in Connexion's `AsyncApp` and once in our `Dispatch`,
compared status, headers and body bytes, for every kind of parameter, body and answer."""

from pathlib import Path
from typing import Any

import pytest
from connexion import AsyncApp
from connexion.middleware import MiddlewarePosition
from starlette.testclient import TestClient

from service.dispatch import ContractApp, Plan
from service.patches.validation import VALIDATOR_MAP, JsonBodyValidator
from service.patches.violations import RaiseParameterViolations

CONTRACT = Path(__file__).parents[1] / "support" / "dispatch" / "contract.yaml"
AUTH = {"Authorization": "Bearer good"}
JSON_BODIES = {
    "application/json": JsonBodyValidator,
    "application/merge-patch+json": JsonBodyValidator,
}
VALIDATOR_MAPS = {
    "ours": VALIDATOR_MAP,
    # A second JSON media type with a validator, as a merge-patch operation would add.
    "merge-patch": {**VALIDATOR_MAP, "body": JSON_BODIES},
}

ITEM = "/api/alice/items/7"
REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", ITEM, {}),
    ("GET", ITEM, {"params": {"text": "hi", "limit": "3", "ratio": "0.5", "flag": "true"}}),
    ("GET", ITEM + "?tags=a&tags=b&ids=1,2,3&piped=x|y&fallback=z", {}),
    ("GET", ITEM + "?tags=a,b", {}),
    ("GET", ITEM, {"headers": {"If-Match": '"v1"', "X-Version": "3"}}),
    ("GET", ITEM, {"headers": {"X-Version": "three"}}),
    ("GET", ITEM + "?limit=many", {}),
    ("GET", ITEM + "?unknown=1", {}),
    ("GET", "/api/alice/items/abc", {}),
    ("GET", ITEM, {"auth": None}),
    ("GET", "/api/alice/async?text=x&tags=1&tags=2", {}),
    ("GET", "/api/alice/async", {}),
    ("PUT", "/api/alice/things", {"json": {"name": "n", "count": 2, "nested": {"a": [1]}}}),
    ("PUT", "/api/alice/things", {"json": {"count": "two"}}),
    (
        "PUT",
        "/api/alice/things",
        {"content": b"{bad", "headers": {"Content-Type": "application/json"}},
    ),
    ("PUT", "/api/alice/things", {"content": b"", "headers": {"Content-Type": "application/json"}}),
    (
        "PUT",
        "/api/alice/things",
        {"content": b'{"name": "m"}', "headers": {"Content-Type": "application/merge-patch+json"}},
    ),
    (
        "PUT",
        "/api/alice/things",
        {
            "content": b'{"name": "m"}',
            "headers": {"Content-Type": "application/json; charset=utf-8"},
        },
    ),
    ("PUT", "/api/alice/things", {"content": b"name=m", "headers": {"Content-Type": "text/plain"}}),
    ("PATCH", "/api/alice/things", {}),
    ("PATCH", "/api/alice/things", {"headers": {"Content-Type": "application/json"}}),
    ("PATCH", "/api/alice/things", {"headers": {"Content-Type": "application/merge-patch+json"}}),
    (
        "PATCH",
        "/api/alice/things",
        {"content": b'{"count": 1}', "headers": {"Content-Type": "application/merge-patch+json"}},
    ),
    ("PATCH", "/api/alice/things", {"json": {"count": 1}}),
    (
        "PATCH",
        "/api/alice/things",
        {"content": b"null", "headers": {"Content-Type": "application/json"}},
    ),
    ("POST", "/api/alice/things", {"data": {"name": "f", "count": "4"}}),
    ("POST", "/api/alice/things", {}),
    ("DELETE", "/api/alice/things", {"json": {"name": "x"}}),
    ("DELETE", "/api/alice/things", {}),
    (
        "POST",
        "/api/alice/nullable",
        {"content": b"null", "headers": {"Content-Type": "application/json"}},
    ),
    ("POST", "/api/alice/nullable", {"json": {"name": "given"}}),
    ("POST", "/api/alice/nullable", {"headers": {"Content-Type": "application/json"}}),
    *[
        ("GET", f"/api/alice/answers/{kind}", {})
        for kind in ("none", "text", "list", "dict", "headers", "response", "connexion")
    ],
    *[("GET", f"/api/alice/answers/{kind}", {}) for kind in ("problem", "raise", "crash")],
    ("POST", ITEM, {}),
    ("GET", "/api/alice/nowhere", {}),
]


def _client(app_class: type[AsyncApp], validator_map: dict[str, Any]) -> TestClient:
    app = app_class(__name__, validator_map=validator_map, strict_validation=True)
    app.add_api(CONTRACT)
    # As in service.app: the parameters' violations are raised after the body is checked.
    app.add_middleware(RaiseParameterViolations, position=MiddlewarePosition.BEFORE_CONTEXT)
    client: TestClient = app.test_client(raise_server_exceptions=False)
    return client


@pytest.mark.parametrize("validators", sorted(VALIDATOR_MAPS))
def test_every_request_is_answered_as_connexion_answers_it(
    validators: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned: list[bool] = []
    bind = Plan.bind

    def counted(plan: Plan, scope: Any) -> Any:
        kwargs = bind(plan, scope)
        planned.append(kwargs is not None)
        return kwargs

    monkeypatch.setattr(Plan, "bind", counted)
    connexion = _client(AsyncApp, VALIDATOR_MAPS[validators])
    ours = _client(ContractApp, VALIDATOR_MAPS[validators])
    for method, path, kwargs in REQUESTS:
        options = {**kwargs, "headers": {**AUTH, **kwargs.get("headers", {})}}
        if "auth" in kwargs:
            options = {k: v for k, v in kwargs.items() if k != "auth"}
        expected = connexion.request(method, path, **options)
        answer = ours.request(method, path, **options)
        assert answer.status_code == expected.status_code, (method, path, answer.text)
        assert answer.headers.multi_items() == expected.headers.multi_items(), (method, path)
        assert answer.content == expected.content, (method, path)
    # The plans answered the most; Connexion's own path only what they leave to it.
    assert planned.count(True) >= 20, planned
    assert planned.count(False) >= 2, planned


def test_the_handler_gets_the_typed_arguments_connexion_would_give() -> None:
    client = _client(ContractApp, VALIDATOR_MAP)
    query = "?tags=a&tags=b&ids=1,2&piped=x|y&limit=3&flag=false"
    answer = client.get(ITEM + query, headers={**AUTH, "If-Match": '"v1"'}).json()
    assert answer["item_id"] == ["int", "7"]
    assert answer["limit"] == ["int", "3"]
    assert answer["flag"] == ["bool", "False"]
    assert answer["tags"] == ["list", "['a', 'b']"]
    assert answer["ids"] == ["list", "[1, 2]"]
    assert answer["piped"] == ["list", "['x', 'y']"]
    assert answer["fallback"] == ["list", "['a', 'b']"]
    assert answer["text"] == ["str", "'none'"]
    assert answer["user"] == ["str", "'alice'"]
    assert answer["if_match"] == ["str", "'\"v1\"'"]
    body = client.put("/api/alice/things", json={"name": "n"}, headers=AUTH).json()
    assert body["payload"] == ["dict", "{'name': 'n'}"]
