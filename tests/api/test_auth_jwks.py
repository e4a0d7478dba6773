"""Tokens signed with asymmetric keys and verified against a JWKS served on loopback, as
Better Auth's JWT plugin issues them; the HS256 secret beside them; the JWKS cache."""

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.warnings import InsecureKeyLengthWarning
from starlette.testclient import TestClient

from service.jwks import UNREACHABLE
from service.settings import Settings
from service.tokens import verifier_from
from tests.support.api import SECRET, Api
from tests.support.auth import OPERATIONS, assert_unauthorized, b64
from tests.support.contract import assert_problem
from tests.support.jwks import ALGORITHMS, JwksServer, SigningKey, claims_for
from tests.support.server import todo_api

MakeClient = Callable[..., TestClient]


@pytest.fixture(scope="session")
def signing_keys() -> dict[str, SigningKey]:
    return {algorithm: SigningKey(algorithm) for algorithm in ALGORITHMS}


@pytest.fixture(scope="session")
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def jwks(jwks_server: JwksServer, signing_keys: dict[str, SigningKey]) -> Iterator[JwksServer]:
    """The loopback JWKS, publishing one key per algorithm; restored after each test."""
    jwks_server.publish(*signing_keys.values())
    yield jwks_server
    jwks_server.gate.set()
    jwks_server.start()


@pytest.fixture
def make_client(client_with: MakeClient, jwks: JwksServer) -> MakeClient:
    """A client of a fresh app (so a fresh JWKS cache) pointed at the loopback Better Auth."""

    def make(**overrides: Any) -> TestClient:
        return client_with(**{"better_auth_url": jwks.base_url, **overrides})

    return make


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


@pytest.fixture
def better_auth_token(jwks: JwksServer, signing_keys: dict[str, SigningKey]) -> Callable[..., str]:
    def sign(user_id: str, algorithm: str = "EdDSA", **overrides: Any) -> str:
        return signing_keys[algorithm].sign(claims_for(user_id, jwks.base_url, **overrides))

    return sign


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


def call(client: TestClient, user_id: str, token: str, method: str = "GET", path: str = "") -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    return client.request(method, f"/api/{user_id}/tasks{path}", headers=headers)


def hs256(claims: dict[str, Any], header: dict[str, Any], key: bytes) -> str:
    signing_input = f"{b64(header)}.{b64(claims)}"
    digest = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


class TestBetterAuthTokens:
    @pytest.mark.parametrize("algorithm", ALGORITHMS)
    def test_accepted_on_the_owners_path(
        self, client: TestClient, better_auth_token: Callable[..., str], algorithm: str
    ) -> None:
        user = new_user()
        owner = Api(client, user, better_auth_token(user, algorithm))

        task = owner.create(title=f"Signed with {algorithm}")

        assert task["user_id"] == owner.user_id
        assert owner.list().json() == [task]

    @pytest.mark.parametrize(
        ("algorithm", "method", "path"),
        [
            *(pytest.param("EdDSA", *op.values, id=f"EdDSA-{op.id}") for op in OPERATIONS),
            *(pytest.param(alg, "GET", "", id=f"{alg}-listTasks") for alg in ALGORITHMS[1:]),
        ],
    )
    def test_403_on_another_users_path_on_every_operation(
        self,
        client: TestClient,
        better_auth_token: Callable[..., str],
        algorithm: str,
        method: str,
        path: str,
    ) -> None:
        other = new_user()
        owner = Api(client, other, better_auth_token(other, algorithm))
        theirs = owner.create(title="Theirs")
        intruder = better_auth_token(new_user(), algorithm)

        response = call(client, other, intruder, method, path.replace("/1", f"/{theirs['id']}"))

        assert assert_problem(response, 403)["detail"] == "The token does not belong to this user."
        assert owner.list().json() == [theirs]

    def test_a_secret_token_is_refused_when_only_the_jwks_is_configured(
        self, client: TestClient, token_for: Callable[..., str]
    ) -> None:
        user = new_user()

        response = call(client, user, token_for(user))

        assert_unauthorized(response)
        assert response.json()["detail"] == "The token's signing algorithm is not accepted."

    def test_secret_and_jwks_together(
        self,
        make_client: MakeClient,
        better_auth_token: Callable[..., str],
        token_for: Callable[..., str],
    ) -> None:
        client = make_client(better_auth_secret=SECRET)
        user = new_user()

        by_secret = Api(client, user, token_for(user)).create(title="HS256")
        by_jwks = Api(client, user, better_auth_token(user)).create(title="EdDSA")

        listed = Api(client, user, token_for(user)).list().json()
        assert sorted(task["id"] for task in listed) == [by_secret["id"], by_jwks["id"]]


class TestAttacks:
    """Every forgery answers 401 with an `invalid_token` challenge, in JWKS-only mode and
    with the secret configured beside the JWKS."""

    @pytest.fixture(params=["jwks-only", "secret-and-jwks"])
    def mode(self, request: pytest.FixtureRequest) -> str:
        mode: str = request.param
        return mode

    @pytest.fixture
    def client(self, mode: str, make_client: MakeClient) -> TestClient:
        if mode == "jwks-only":
            return make_client()
        return make_client(better_auth_secret=SECRET)

    def assert_refused(self, client: TestClient, user: str, token: str, detail: str) -> None:
        response = call(client, user, token)
        assert_unauthorized(response)
        assert response.json()["detail"] == detail
        # Nothing was stored on the attacker's behalf.
        create = client.post(f"/api/{user}/tasks", json={"title": "x"}, headers=bearer(token))
        assert create.status_code == 401

    def test_alg_none(self, client: TestClient, signing_keys: dict[str, SigningKey]) -> None:
        user = new_user()
        header = {"alg": "none", "kid": signing_keys["EdDSA"].kid}
        token = f"{b64(header)}.{b64(claims_for(user, 'x'))}."

        self.assert_refused(client, user, token, "The token's signing algorithm is not accepted.")

    @pytest.mark.parametrize(
        ("algorithm", "encoding"),
        [*((algorithm, "pem") for algorithm in ALGORITHMS), ("RS256", "der"), ("EdDSA", "jwk")],
    )
    def test_hs256_signed_with_the_public_key_as_the_secret(
        self,
        client: TestClient,
        mode: str,
        jwks: JwksServer,
        signing_keys: dict[str, SigningKey],
        algorithm: str,
        encoding: str,
    ) -> None:
        key = signing_keys[algorithm]
        secret = public_key_bytes(key, encoding)
        user = new_user()
        token = hs256(claims_for(user, jwks.base_url), {"alg": "HS256", "kid": key.kid}, secret)

        # Without a secret no HS* token is considered; with one, it is checked against the
        # secret only, never against a public key.
        detail = {
            "jwks-only": "The token's signing algorithm is not accepted.",
            "secret-and-jwks": "The token's signature does not verify.",
        }[mode]

        self.assert_refused(client, user, token, detail)

    @pytest.mark.parametrize(
        ("signed_with", "claimed"),
        [("RS256", "PS256"), ("PS256", "RS256"), ("ES512", "ES256"), ("EdDSA", "RS256")],
    )
    def test_header_alg_swapped(
        self,
        client: TestClient,
        better_auth_token: Callable[..., str],
        signing_keys: dict[str, SigningKey],
        signed_with: str,
        claimed: str,
    ) -> None:
        user = new_user()
        _, payload, signature = better_auth_token(user, signed_with).split(".")
        header = {"alg": claimed, "kid": signing_keys[signed_with].kid}
        token = f"{b64(header)}.{payload}.{signature}"

        self.assert_refused(client, user, token, "The token's algorithm does not match its key.")

    @pytest.mark.parametrize("algorithm", ALGORITHMS)
    def test_tampered_payload(
        self,
        client: TestClient,
        jwks: JwksServer,
        better_auth_token: Callable[..., str],
        algorithm: str,
    ) -> None:
        user = new_user()
        header, _, signature = better_auth_token(new_user(), algorithm).split(".")
        token = f"{header}.{b64(claims_for(user, jwks.base_url))}.{signature}"

        self.assert_refused(client, user, token, "The token's signature does not verify.")

    @pytest.mark.parametrize(
        ("claim", "detail"),
        [
            ("iss", "The token's issuer is not accepted."),
            ("aud", "The token's audience is not accepted."),
        ],
    )
    def test_wrong_issuer_or_audience(
        self, client: TestClient, better_auth_token: Callable[..., str], claim: str, detail: str
    ) -> None:
        user = new_user()
        token = better_auth_token(user, **{claim: "https://evil.example.com"})

        self.assert_refused(client, user, token, detail)

    @pytest.mark.parametrize("claim", ["iss", "aud", "sub", "exp"])
    def test_missing_claim(
        self, client: TestClient, jwks: JwksServer, signing_keys: dict[str, SigningKey], claim: str
    ) -> None:
        user = new_user()
        claims = claims_for(user, jwks.base_url)
        del claims[claim]

        self.assert_refused(
            client, user, signing_keys["EdDSA"].sign(claims), f"The token has no '{claim}' claim."
        )

    def test_expired_beyond_the_leeway(
        self, client: TestClient, better_auth_token: Callable[..., str]
    ) -> None:
        user = new_user()
        now = int(time.time())
        token = better_auth_token(user, iat=now - 1000, exp=now - 40)

        self.assert_refused(client, user, token, "The token has expired.")

    def test_accepted_when_expired_within_the_leeway(
        self, client: TestClient, better_auth_token: Callable[..., str]
    ) -> None:
        user = new_user()
        now = int(time.time())

        assert call(client, user, better_auth_token(user, exp=now - 10)).status_code == 200

    def test_no_kid(self, client: TestClient, jwks: JwksServer) -> None:
        user = new_user()
        key = SigningKey("EdDSA")
        token = jwt.encode(claims_for(user, jwks.base_url), key.private, "EdDSA")

        self.assert_refused(client, user, token, "The token names no signing key ('kid').")

    def test_a_key_the_auth_server_does_not_publish(
        self, client: TestClient, jwks: JwksServer
    ) -> None:
        user = new_user()
        token = SigningKey("EdDSA").sign(claims_for(user, jwks.base_url))

        self.assert_refused(
            client, user, token, "The token's signing key is not published by the auth server."
        )

    def test_a_symmetric_key_in_the_jwks_is_never_used(
        self, client: TestClient, jwks: JwksServer, signing_keys: dict[str, SigningKey]
    ) -> None:
        raw = b"k" * 64
        jwks.keys = [
            *jwks.keys,
            {"kty": "oct", "k": base64.urlsafe_b64encode(raw).decode(), "alg": "HS256", "kid": "s"},
        ]
        user = new_user()
        token = hs256(claims_for(user, jwks.base_url), {"alg": "HS256", "kid": "s"}, raw)

        response = call(client, user, token)

        assert_unauthorized(response)

    @pytest.mark.parametrize(
        ("alg", "algorithm"), [("ES256", "RS256"), ("EdDSA", "ES256"), ("ES256", "ES512")]
    )
    def test_a_jwks_entry_whose_alg_does_not_fit_its_key_type_is_ignored(
        self,
        client: TestClient,
        jwks: JwksServer,
        signing_keys: dict[str, SigningKey],
        alg: str,
        algorithm: str,
    ) -> None:
        key = signing_keys[algorithm]
        jwks.keys = [{**key.jwk, "alg": alg, "kid": "mislabelled"}]
        user = new_user()
        _, payload, signature = key.sign(claims_for(user, jwks.base_url)).split(".")
        token = f"{b64({'alg': alg, 'kid': 'mislabelled'})}.{payload}.{signature}"

        self.assert_refused(
            client, user, token, "The token's signing key is not published by the auth server."
        )

    def test_a_jwks_entry_meant_for_encryption_is_ignored(
        self, client: TestClient, jwks: JwksServer, signing_keys: dict[str, SigningKey]
    ) -> None:
        key = signing_keys["RS256"]
        jwks.keys = [{**key.jwk, "use": "enc"}]
        user = new_user()

        self.assert_refused(
            client,
            user,
            key.sign(claims_for(user, jwks.base_url)),
            "The token's signing key is not published by the auth server.",
        )

    def test_a_short_rsa_key_is_refused(self, client: TestClient, jwks: JwksServer) -> None:
        weak = SigningKey("RS256", rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505
        jwks.publish(weak)
        user = new_user()
        with pytest.warns(InsecureKeyLengthWarning):
            token = weak.sign(claims_for(user, jwks.base_url))

        self.assert_refused(
            client, user, token, "The token's signing key is too weak to be trusted."
        )


class TestJwksCache:
    def test_a_rotated_key_is_accepted_after_one_refetch(
        self, make_client: MakeClient, jwks: JwksServer, signing_keys: dict[str, SigningKey]
    ) -> None:
        client = make_client(jwks_refresh_interval=0)
        user = new_user()
        old = signing_keys["EdDSA"]
        assert call(client, user, old.sign(claims_for(user, jwks.base_url))).status_code == 200
        fetched = jwks.fetches
        new = SigningKey("EdDSA")
        jwks.publish(new, old)

        response = call(client, user, new.sign(claims_for(user, jwks.base_url)))

        assert response.status_code == 200
        assert jwks.fetches == fetched + 1
        assert call(client, user, old.sign(claims_for(user, jwks.base_url))).status_code == 200
        assert jwks.fetches == fetched + 1

    def test_a_removed_key_is_refused_once_the_cache_refreshes(
        self, make_client: MakeClient, jwks: JwksServer, signing_keys: dict[str, SigningKey]
    ) -> None:
        client = make_client(jwks_max_age=0, jwks_refresh_interval=0)
        user = new_user()
        token = signing_keys["ES256"].sign(claims_for(user, jwks.base_url))
        assert call(client, user, token).status_code == 200
        jwks.publish(signing_keys["EdDSA"])

        response = call(client, user, token)

        assert_unauthorized(response)
        assert response.json()["detail"] == (
            "The token's signing key is not published by the auth server."
        )

    def test_a_flood_of_unknown_kids_fetches_the_jwks_once(
        self, make_client: MakeClient, jwks: JwksServer
    ) -> None:
        client = make_client()  # the default: at most one refetch per 5 seconds
        user = new_user()
        before = jwks.fetches

        statuses = {
            call(
                client, user, SigningKey("EdDSA").sign(claims_for(user, jwks.base_url))
            ).status_code
            for _ in range(50)
        }

        assert statuses == {401}
        assert jwks.fetches == before + 1

    def test_concurrent_requests_share_one_fetch_and_wait_for_it(
        self, make_client: MakeClient, jwks: JwksServer, signing_keys: dict[str, SigningKey]
    ) -> None:
        app = make_client().app  # a cold cache
        user = new_user()
        published = [signing_keys["EdDSA"].sign(claims_for(user, jwks.base_url))] * 10
        unknown = [SigningKey("EdDSA").sign(claims_for(user, jwks.base_url)) for _ in range(10)]
        before = jwks.fetches

        async def together() -> list[int]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
                responses = await asyncio.gather(
                    *(
                        http.get(f"/api/{user}/tasks", headers=bearer(token))
                        for token in published + unknown
                    )
                )
            return [response.status_code for response in responses]

        assert asyncio.run(together()) == [200] * 10 + [401] * 10
        assert jwks.fetches == before + 1

    def test_503_while_the_jwks_is_down_then_recovery(
        self, make_client: MakeClient, jwks: JwksServer, signing_keys: dict[str, SigningKey]
    ) -> None:
        client = make_client(jwks_refresh_interval=0)
        user = new_user()
        token = signing_keys["PS256"].sign(claims_for(user, jwks.base_url))
        jwks.stop()

        response = call(client, user, token)

        problem = assert_problem(response, 503)
        assert problem["detail"] == UNREACHABLE
        assert response.headers["retry-after"] == "5"
        jwks.start()
        assert call(client, user, token).status_code == 200

    def test_cached_keys_keep_working_while_the_jwks_is_down(
        self, make_client: MakeClient, jwks: JwksServer, signing_keys: dict[str, SigningKey]
    ) -> None:
        client = make_client(jwks_refresh_interval=0, jwks_max_age=0)
        user = new_user()
        token = signing_keys["ES512"].sign(claims_for(user, jwks.base_url))
        assert call(client, user, token).status_code == 200
        jwks.stop()

        assert call(client, user, token).status_code == 200
        unknown = SigningKey("ES512").sign(claims_for(user, jwks.base_url))
        assert assert_problem(call(client, user, unknown), 503)["detail"] == UNREACHABLE

    def test_503_when_the_jwks_does_not_answer_within_the_timeout(
        self, make_client: MakeClient, jwks: JwksServer, signing_keys: dict[str, SigningKey]
    ) -> None:
        client = make_client(jwks_timeout=0.3)
        user = new_user()
        jwks.gate.clear()

        response = call(client, user, signing_keys["RS256"].sign(claims_for(user, jwks.base_url)))

        assert assert_problem(response, 503)["detail"] == UNREACHABLE

    def test_503_when_the_jwks_url_answers_an_error(
        self, make_client: MakeClient, jwks: JwksServer, signing_keys: dict[str, SigningKey]
    ) -> None:
        client = make_client(better_auth_jwks_url=f"{jwks.base_url}/api/auth/elsewhere")
        user = new_user()

        response = call(client, user, signing_keys["EdDSA"].sign(claims_for(user, jwks.base_url)))

        assert assert_problem(response, 503)["detail"] == UNREACHABLE

    def test_explicit_jwks_url_issuer_and_audience(
        self, make_client: MakeClient, jwks: JwksServer, signing_keys: dict[str, SigningKey]
    ) -> None:
        client = make_client(
            better_auth_url=None,
            better_auth_jwks_url=f"{jwks.base_url}/api/auth/jwks",
            jwt_issuer="https://auth.example.com",
            jwt_audience="tasks-api",
        )
        user = new_user()
        key = signing_keys["ES256"]
        claims = claims_for(user, "https://auth.example.com", aud=["tasks-api", "other"])

        assert call(client, user, key.sign(claims)).status_code == 200
        default = call(client, user, key.sign(claims_for(user, jwks.base_url)))
        assert_unauthorized(default)
        assert default.json()["detail"] == "The token's issuer is not accepted."

    def test_the_fetch_does_not_block_the_event_loop(
        self, make_client: MakeClient, jwks: JwksServer, signing_keys: dict[str, SigningKey]
    ) -> None:
        app = make_client().app
        user = new_user()
        token = signing_keys["EdDSA"].sign(claims_for(user, jwks.base_url))
        jwks.gate.clear()

        async def scenario() -> tuple[int, int]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
                verified = asyncio.create_task(
                    http.get(f"/api/{user}/tasks", headers=bearer(token))
                )
                # A blocking fetch would hold the loop for the gate's 30 s: this times out.
                async with asyncio.timeout(10):
                    while not jwks.gate_waiting():
                        await asyncio.sleep(0.01)
                # The JWKS answer is held back; another request is served meanwhile.
                health = await asyncio.wait_for(http.get("/health"), timeout=5)
                assert not verified.done()
                jwks.gate.set()
                return health.status_code, (await verified).status_code

        assert asyncio.run(scenario()) == (200, 200)


class TestConfiguration:
    def test_serve_refuses_with_neither_secret_nor_jwks_and_says_what_to_set(
        self, tmp_path: Path
    ) -> None:
        result = todo_api("serve", env={}, cwd=tmp_path)

        assert result.returncode != 0
        for variable in ("BETTER_AUTH_URL", "BETTER_AUTH_JWKS_URL", "BETTER_AUTH_SECRET"):
            assert variable in result.stderr
        assert "Traceback" not in result.stderr

    def test_the_jwks_url_follows_better_auth_url(self) -> None:
        settings = Settings(_env_file=None, better_auth_url="https://app.example.com/")

        assert settings.jwks_url == "https://app.example.com/api/auth/jwks"
        settings.require_auth()

    def test_a_url_that_is_not_http_is_refused(self, tmp_path: Path) -> None:
        result = todo_api(
            "token", "alice", env={"BETTER_AUTH_URL": "app.example.com"}, cwd=tmp_path
        )

        assert result.returncode != 0
        assert "BETTER_AUTH_URL: Value error, must be an https:// URL" in result.stderr

    @pytest.mark.parametrize("variable", ["BETTER_AUTH_URL", "BETTER_AUTH_JWKS_URL"])
    def test_keys_over_plain_http_are_refused_but_for_loopback(
        self, tmp_path: Path, variable: str
    ) -> None:
        refused = todo_api("serve", env={variable: "http://auth.example.com"}, cwd=tmp_path)

        [line] = refused.stderr.splitlines()
        assert refused.returncode != 0
        assert f"{variable}: Value error, must be an https:// URL" in line
        assert "loopback" in line
        for loopback in ("http://127.0.0.1:3000", "http://localhost:3000", "http://[::1]:3000"):
            fields: dict[str, Any] = {variable.lower(): loopback}
            Settings(_env_file=None, **fields).require_auth()

    def test_token_needs_the_secret_even_with_a_jwks(self, tmp_path: Path) -> None:
        env = {"BETTER_AUTH_URL": "https://app.example.com"}
        result = todo_api("token", "alice", env=env, cwd=tmp_path)

        assert result.returncode != 0
        assert "BETTER_AUTH_SECRET" in result.stderr

    def test_minted_tokens_carry_the_required_issuer_and_audience(
        self, make_client: MakeClient
    ) -> None:
        settings = Settings(
            _env_file=None,
            better_auth_secret=SECRET,
            jwt_issuer="https://app.example.com",
            jwt_audience="tasks-api",
        )
        client = make_client(
            **settings.model_dump(include={"better_auth_secret", "jwt_issuer", "jwt_audience"})
        )
        user = new_user()

        token = verifier_from(settings).mint(user, 60)

        claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="tasks-api")
        assert (claims["iss"], claims["aud"]) == ("https://app.example.com", "tasks-api")
        assert call(client, user, token).status_code == 200
        bare = jwt.encode({"sub": user, "exp": int(time.time()) + 60}, SECRET, "HS256")
        assert call(client, user, bare).json()["detail"] == "The token has no 'iss' claim."


def public_key_bytes(key: SigningKey, encoding: str) -> bytes:
    if encoding == "jwk":
        return json.dumps(key.jwk).encode()
    public = key.private.public_key()
    form = serialization.Encoding.PEM if encoding == "pem" else serialization.Encoding.DER
    raw: bytes = public.public_bytes(form, serialization.PublicFormat.SubjectPublicKeyInfo)
    return raw


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def bearer_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestJwksOutage:
    """The auth server hangs: one shared fetch, bounded by JWKS_TIMEOUT, never a convoy."""

    TIMEOUT = 1.0
    CONCURRENT = 50

    async def _timed(self, http: httpx.AsyncClient, user: str, token: str) -> tuple[int, float]:
        started = time.monotonic()
        response = await http.get(f"/api/{user}/tasks", headers=bearer_header(token))
        return response.status_code, time.monotonic() - started

    def test_cached_keys_serve_and_unknown_kids_fail_fast_while_the_jwks_hangs(
        self, make_client: MakeClient, jwks: JwksServer, signing_keys: dict[str, SigningKey]
    ) -> None:
        # Stale at once and no rate limit: the worst case for a convoy of refreshes.
        app = make_client(jwks_timeout=self.TIMEOUT, jwks_max_age=0, jwks_refresh_interval=0).app
        user = new_user()
        valid = signing_keys["EdDSA"].sign(claims_for(user, jwks.base_url))
        unknown = SigningKey("EdDSA").sign(claims_for(user, jwks.base_url))

        async def scenario() -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://api", timeout=300
            ) as http:
                assert (await self._timed(http, user, valid))[0] == 200  # the keys are cached
                jwks.gate.clear()
                served = [self._timed(http, user, valid) for _ in range(self.CONCURRENT)]
                refused = [self._timed(http, user, unknown) for _ in range(self.CONCURRENT)]
                return list(await asyncio.gather(*served)), list(await asyncio.gather(*refused))

        served, refused = asyncio.run(scenario())

        print(
            f"\nJWKS hanging: {self.CONCURRENT} valid requests, slowest "
            f"{max(s for _, s in served):.2f} s; {self.CONCURRENT} unknown-kid requests, slowest "
            f"{max(s for _, s in refused):.2f} s (JWKS_TIMEOUT={self.TIMEOUT:g} s)"
        )
        assert {status for status, _ in served} == {200}
        assert {status for status, _ in refused} <= {401, 503}
        # Unknown kids answer within the one fetch's timeout; valid requests also wait for
        # that fetch, then do their own database work (50 at once), hence the wider bound.
        # A convoy of fetches would take 50 x JWKS_TIMEOUT.
        assert max(seconds for _, seconds in refused) < self.TIMEOUT + 1
        assert max(seconds for _, seconds in served) < self.TIMEOUT + 3

    def test_the_rate_limit_counts_from_the_end_of_a_failed_fetch(
        self, make_client: MakeClient, jwks: JwksServer, signing_keys: dict[str, SigningKey]
    ) -> None:
        client = make_client(jwks_timeout=0.5, jwks_refresh_interval=2)
        user = new_user()
        jwks.gate.clear()
        before = jwks.fetches

        first = call(client, user, signing_keys["EdDSA"].sign(claims_for(user, jwks.base_url)))
        time.sleep(1.7)  # over the interval after the fetch began, under it after it ended
        second = call(client, user, signing_keys["EdDSA"].sign(claims_for(user, jwks.base_url)))

        assert assert_problem(first, 503)["detail"] == UNREACHABLE
        assert assert_problem(second, 503)["detail"] == UNREACHABLE
        assert jwks.fetches - before == 1

    def test_a_key_replaced_under_the_same_kid_stops_its_old_tokens_at_once(
        self, make_client: MakeClient, jwks: JwksServer
    ) -> None:
        client = make_client(jwks_refresh_interval=0)
        user = new_user()
        old = SigningKey("EdDSA")
        jwks.publish(old)
        token = old.sign(claims_for(user, jwks.base_url))
        assert call(client, user, token).status_code == 200  # verified and remembered
        jwks.publish(SigningKey("EdDSA", kid=old.kid))
        # Any token naming an unknown kid makes the cache refetch: the key under old.kid is new.
        call(client, user, SigningKey("ES512").sign(claims_for(user, jwks.base_url)))

        response = call(client, user, token)

        assert_unauthorized(response)
        assert response.json()["detail"] == "The token's signature does not verify."
