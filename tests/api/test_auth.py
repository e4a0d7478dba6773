import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.support.api import Api
from tests.support.auth import OPERATIONS, assert_unauthorized, b64, call, sign, valid_claims
from tests.support.contract import assert_problem


class TestAuthentication:
    def test_401_without_a_token(self, client: TestClient, user_id: str) -> None:
        assert_unauthorized(call(client, user_id, None), token_presented=False)

    @pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Token abc"])
    def test_401_for_another_scheme_or_no_credentials(
        self, client: TestClient, user_id: str, header: str
    ) -> None:
        response = client.get(f"/api/{user_id}/tasks", headers={"Authorization": header})

        assert_unauthorized(response, token_presented=False)

    def test_401_for_a_malformed_token(self, client: TestClient, user_id: str) -> None:
        assert_unauthorized(call(client, user_id, "not.a.jwt"))

    def test_401_for_a_token_signed_with_another_secret(
        self, client: TestClient, user_id: str
    ) -> None:
        token = sign(valid_claims(user_id), key="another-secret-0123456789-abcdefghijklmnop")

        assert_unauthorized(call(client, user_id, token))

    def test_401_for_an_unsigned_token(self, client: TestClient, user_id: str) -> None:
        token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(valid_claims(user_id))}."

        assert_unauthorized(call(client, user_id, token))

    def test_401_when_the_header_names_another_algorithm(
        self, client: TestClient, user_id: str
    ) -> None:
        signed = sign(valid_claims(user_id))
        _, payload, signature = signed.split(".")
        token = f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{payload}.{signature}"

        assert_unauthorized(call(client, user_id, token))

    def test_401_for_a_tampered_payload(self, client: TestClient, user_id: str) -> None:
        header, _, signature = sign(valid_claims("someone-else")).split(".")
        token = f"{header}.{b64(valid_claims(user_id))}.{signature}"

        assert_unauthorized(call(client, user_id, token))

    def test_401_when_expired_beyond_the_leeway(self, client: TestClient, user_id: str) -> None:
        token = sign(valid_claims(user_id, exp=int(time.time()) - 40))

        response = call(client, user_id, token)

        assert_unauthorized(response)
        assert response.json()["detail"] == "The token has expired."

    def test_accepted_when_expired_within_the_leeway(
        self, client: TestClient, user_id: str
    ) -> None:
        token = sign(valid_claims(user_id, exp=int(time.time()) - 10))

        assert call(client, user_id, token).status_code == 200

    def test_a_token_accepted_before_is_refused_once_it_expires(
        self, client: TestClient, user_id: str
    ) -> None:
        # Two seconds from the end of the leeway: accepted now (and remembered), not later.
        token = sign(valid_claims(user_id, exp=int(time.time()) - 28))
        assert call(client, user_id, token).status_code == 200

        time.sleep(3)

        response = call(client, user_id, token)
        assert_unauthorized(response)
        assert response.json()["detail"] == "The token has expired."

    def test_a_token_accepted_before_is_still_checked_for_its_owner(
        self, api: Api, other_api: Api
    ) -> None:
        assert api.list().status_code == 200

        response = api.client.get(f"/api/{other_api.user_id}/tasks", headers=api.headers)

        assert_problem(response, 403)

    @pytest.mark.parametrize("claim", ["nbf", "iat"])
    def test_401_when_not_valid_yet(self, client: TestClient, user_id: str, claim: str) -> None:
        token = sign(valid_claims(user_id, **{claim: int(time.time()) + 120}))

        assert_unauthorized(call(client, user_id, token))

    @pytest.mark.parametrize("claim", ["sub", "exp"])
    def test_401_without_a_required_claim(
        self, client: TestClient, user_id: str, claim: str
    ) -> None:
        claims = valid_claims(user_id)
        del claims[claim]

        response = call(client, user_id, sign(claims))

        assert_unauthorized(response)
        assert claim in response.json()["detail"]

    @pytest.mark.parametrize("sub", [42, "", None])
    def test_401_when_sub_is_not_a_user_id(
        self, client: TestClient, user_id: str, sub: Any
    ) -> None:
        assert_unauthorized(call(client, user_id, sign(valid_claims(user_id, sub=sub))))

    @pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
    def test_every_hmac_algorithm_is_accepted(
        self, client: TestClient, user_id: str, algorithm: str
    ) -> None:
        token = sign(valid_claims(user_id), algorithm=algorithm)

        assert call(client, user_id, token).status_code == 200

    @pytest.mark.parametrize(("method", "path"), OPERATIONS)
    def test_401_on_every_operation(
        self, client: TestClient, user_id: str, method: str, path: str
    ) -> None:
        assert_unauthorized(call(client, user_id, None, method, path), token_presented=False)


class TestOwnership:
    @pytest.mark.parametrize(("method", "path"), OPERATIONS)
    def test_403_for_another_users_path_on_every_operation(
        self, api: Api, other_api: Api, method: str, path: str
    ) -> None:
        theirs = other_api.create(title="Theirs")
        target = path.replace("/1", f"/{theirs['id']}")

        response = api.client.request(
            method,
            f"/api/{other_api.user_id}/tasks{target}",
            headers=api.headers,
            json={"title": "x"},
        )

        problem = assert_problem(response, 403)
        assert problem["detail"] == "The token does not belong to this user."
        assert other_api.get(theirs["id"]).json() == theirs
        assert other_api.list().headers["x-total-count"] == "1"

    def test_403_comes_before_validation(self, api: Api, other_api: Api) -> None:
        response = api.client.post(
            f"/api/{other_api.user_id}/tasks", headers=api.headers, json={"title": ""}
        )

        assert_problem(response, 403)

    def test_a_user_sees_only_their_own_tasks(
        self, api: Api, other_api: Api, token_for: Callable[..., str]
    ) -> None:
        mine = api.create(title="mine")
        theirs = other_api.create(title="theirs")

        assert api.list().json() == [mine]
        assert other_api.list().json() == [theirs]
