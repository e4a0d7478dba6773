"""What an operator relies on: CORS for the frontend, one JSON log line per request with
no secret in any line, tracebacks kept server-side, statements and threads bounded."""

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anyio.to_thread
import pytest
from connexion import AsyncApp
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from starlette.testclient import TestClient

import db.tasks
from db.engine import current_engine, make_engine, transaction
from service.app import create_app
from service.logs import JsonFormatter
from service.settings import Settings
from tests.support.api import SECRET, Api
from tests.support.contract import SPEC, assert_problem
from tests.support.postgres import PostgresServer

FRONTEND = "https://app.example.com"
OPERATIONS = [
    pytest.param(method.upper(), path, id=operation["operationId"])
    for path, item in SPEC["paths"].items()
    for method, operation in item.items()
    if method in ("get", "put", "post", "delete", "patch")
]


def _concrete(path: str, user_id: str) -> str:
    return path.replace("{user_id}", user_id).replace("{task_id}", "1")


@pytest.fixture(scope="module")
def cors_client(settings: Settings) -> Iterator[TestClient]:
    allowed = settings.model_copy(update={"cors_origins": f"{FRONTEND}, https://admin.example"})
    with create_app(allowed).test_client() as client:
        yield client


@pytest.fixture(scope="module")
def credentials_client(settings: Settings) -> Iterator[TestClient]:
    allowed = settings.model_copy(
        update={
            "cors_origins": f"{FRONTEND}, https://admin.example",
            "cors_allow_credentials": True,
        }
    )
    with create_app(allowed).test_client() as client:
        yield client


CREDENTIALS = "access-control-allow-credentials"
EVIL = "https://evil.example"


class TestCorsWithCredentials:
    def test_preflight_from_an_allowed_origin_carries_it(
        self, credentials_client: TestClient, cors_client: TestClient
    ) -> None:
        on, off = (_preflight(client, FRONTEND) for client in (credentials_client, cors_client))

        assert on.status_code == off.status_code == 200
        assert on.headers[CREDENTIALS] == "true"
        assert on.headers["access-control-allow-origin"] == FRONTEND
        assert CREDENTIALS not in off.headers

    def test_answers_to_an_allowed_origin_carry_it(
        self,
        credentials_client: TestClient,
        cors_client: TestClient,
        user_id: str,
        token_for: Callable[..., str],
    ) -> None:
        on = Api(credentials_client, user_id, token_for(user_id))
        off = Api(cors_client, user_id, token_for(user_id))
        created = on.request("POST", json={"title": "With cookies too"}, headers=_origin())
        listed = on.request("GET", headers=_origin())
        refused = on.request("POST", json={"title": ""}, headers=_origin())
        without = off.request("GET", headers=_origin())

        for response in (created, listed, refused):
            assert response.headers[CREDENTIALS] == "true"
            assert response.headers["access-control-allow-origin"] == FRONTEND
        assert created.status_code == 201
        assert_problem(refused, 422)
        assert without.status_code == 200
        assert CREDENTIALS not in without.headers
        assert [task["title"] for task in without.json()] == ["With cookies too"]

    def test_a_disallowed_origin_never_gets_it(
        self, credentials_client: TestClient, user_id: str, token_for: Callable[..., str]
    ) -> None:
        preflight = _preflight(credentials_client, EVIL)
        answer = Api(credentials_client, user_id, token_for(user_id)).request(
            "GET", headers={"Origin": EVIL}
        )

        assert preflight.status_code == 400
        assert answer.status_code == 200
        for response in (preflight, answer):
            assert CREDENTIALS not in response.headers
            assert "access-control-allow-origin" not in response.headers

    def test_the_headers_a_frontend_reads_are_exposed(self, credentials_client: TestClient) -> None:
        response = credentials_client.get("/api/user-1/tasks", headers=_origin())

        exposed = set(response.headers["access-control-expose-headers"].lower().split(", "))
        assert {"etag", "location", "x-total-count", "retry-after", "x-request-id"} <= exposed

    def test_credentials_with_a_wildcard_origin_are_refused(self, settings: Settings) -> None:
        wildcard = settings.model_copy(
            update={"cors_origins": f"{FRONTEND},*", "cors_allow_credentials": True}
        )

        with pytest.raises(SystemExit, match="CORS_ALLOW_CREDENTIALS"):
            create_app(wildcard)


def _preflight(client: TestClient, origin: str) -> Any:
    return client.options(
        "/api/user-1/tasks",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


class TestCors:
    @pytest.mark.parametrize(("method", "path"), OPERATIONS)
    def test_preflight_allows_every_operation(
        self, cors_client: TestClient, method: str, path: str
    ) -> None:
        response = cors_client.options(
            _concrete(path, "user-1"),
            headers={
                "Origin": FRONTEND,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization, content-type, x-request-id",
            },
        )

        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == FRONTEND
        assert method in response.headers["access-control-allow-methods"]
        allowed = response.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "x-request-id"} <= set(allowed.split(", "))

    def test_preflight_from_another_origin_is_refused(self, cors_client: TestClient) -> None:
        response = cors_client.options(
            "/api/user-1/tasks",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )

        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers

    def test_answers_expose_count_and_location(
        self, cors_client: TestClient, user_id: str, token_for: Callable[..., str]
    ) -> None:
        api = Api(cors_client, user_id, token_for(user_id))
        created = api.request("POST", json={"title": "From the browser"}, headers=_origin())
        listed = api.request("GET", headers=_origin())

        for response in (created, listed):
            assert response.headers["access-control-allow-origin"] == FRONTEND
            exposed = response.headers["access-control-expose-headers"].lower()
            assert {"x-total-count", "location", "x-request-id"} <= set(exposed.split(", "))
        assert created.status_code == 201
        assert listed.headers["x-total-count"] == "1"
        assert listed.json()[0]["title"] == "From the browser"

    def test_errors_carry_cors_headers_too(self, cors_client: TestClient) -> None:
        response = cors_client.get("/api/user-1/tasks", headers=_origin())

        assert_problem(response, 401)
        assert response.headers["access-control-allow-origin"] == FRONTEND

    def test_no_origin_is_allowed_by_default(self, client: TestClient, api: Api) -> None:
        preflight = client.options(
            "/api/user-1/tasks",
            headers={**_origin(), "Access-Control-Request-Method": "GET"},
        )
        answer = api.request("GET", headers=_origin())

        assert answer.status_code == 200
        for response in (preflight, answer):
            assert "access-control-allow-origin" not in response.headers


def _origin() -> dict[str, str]:
    return {"Origin": FRONTEND}


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    formatter = JsonFormatter()
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if record.name == "service.access"
    ]


class TestRequestLog:
    def test_one_json_line_per_request(self, api: Api, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.INFO)
        response = api.request("POST", json={"title": "Logged"})

        [line] = _access_lines(caplog)
        assert response.status_code == 201
        assert line["method"] == "POST"
        assert line["path"] == "/api/{user_id}/tasks"
        assert line["status"] == 201
        assert line["user_id"] == api.user_id
        assert isinstance(line["duration_ms"], float)
        assert line["duration_ms"] >= 0
        assert re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]+", line["request_id"])
        assert response.headers["x-request-id"] == line["request_id"]

    def test_generated_request_ids_differ(self, api: Api) -> None:
        ids = {api.list().headers["x-request-id"] for _ in range(20)}

        assert len(ids) == 20

    def test_request_id_sent_is_echoed_and_logged(
        self, api: Api, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)
        response = api.request("GET", "/999999", headers={"X-Request-ID": "frontend-7f3a.1"})

        [line] = _access_lines(caplog)
        assert_problem(response, 404)
        assert response.headers["x-request-id"] == "frontend-7f3a.1"
        assert line["request_id"] == "frontend-7f3a.1"
        assert line["path"] == "/api/{user_id}/tasks/{task_id}"
        assert line["status"] == 404

    def test_unsafe_request_id_is_replaced(
        self, api: Api, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)
        response = api.request("GET", headers={"X-Request-ID": 'x" injected="1' + "a" * 200})

        [line] = _access_lines(caplog)
        assert re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]+", response.headers["x-request-id"])
        assert line["request_id"] == response.headers["x-request-id"]

    def test_unauthenticated_request_has_no_user(
        self, client: TestClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)
        response = client.get("/api/someone/tasks")

        [line] = _access_lines(caplog)
        assert_problem(response, 401)
        assert line["status"] == 401
        assert line["user_id"] is None

    def test_no_token_or_secret_in_any_log_line(
        self,
        client: TestClient,
        api: Api,
        token_for: Callable[..., str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        expired = token_for(api.user_id, ttl=-3600)
        other_users = token_for("someone-else")
        tokens = [api.headers["Authorization"].split()[1], expired, other_users, "not.a.jwt"]
        api.create(title="With a valid token")
        for token in tokens[1:]:
            response = client.get(
                f"/api/{api.user_id}/tasks", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code in (401, 403)
        client.get(f"/api/{api.user_id}/tasks", params={"access_token": tokens[0]})

        formatter = JsonFormatter()
        # httpx is the test's own client, which logs the URLs it requests.
        server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
        lines = [formatter.format(record) for record in server_side]
        assert len(_access_lines(caplog)) == 5
        for line in lines:
            assert SECRET not in line
            for token in tokens:
                assert token not in line


class TestServerErrors:
    def test_traceback_is_logged_not_answered(
        self, app: AsyncApp, api: Api, caplog: pytest.LogCaptureFixture, monkeypatch: Any
    ) -> None:
        def broken(*_args: Any, **_kwargs: Any) -> None:
            raise RuntimeError("internal detail 5f2c")

        monkeypatch.setattr(db.tasks, "create", broken)
        with app.test_client() as raw:
            response = raw.post(
                f"/api/{api.user_id}/tasks", json={"title": "Boom"}, headers=api.headers
            )

        body = assert_problem(response, 500)
        assert "5f2c" not in response.text
        assert "Traceback" not in response.text
        assert "RuntimeError" not in body["detail"]
        logged = [r for r in caplog.records if r.exc_info]
        assert logged
        assert "internal detail 5f2c" in JsonFormatter().format(logged[0])
        assert api.list().json() == []


class TestThreads:
    def test_worker_threads_match_the_connection_pool(self, client: TestClient) -> None:
        assert client.portal is not None
        assert client.portal.call(_thread_tokens) == 10  # DB_POOL_SIZE 10 + DB_MAX_OVERFLOW 0

    def test_worker_threads_can_be_set(self, settings: Settings) -> None:
        app = create_app(settings.model_copy(update={"worker_threads": 3}))
        with app.test_client() as client:
            assert client.portal is not None
            assert client.portal.call(_thread_tokens) == 3


def _thread_tokens() -> float:
    return anyio.to_thread.current_default_thread_limiter().total_tokens


class TestContentType:
    def test_json_body_without_content_type_is_taken_as_json(self, api: Api) -> None:
        response = api.request("POST", content=b'{"title": "No header"}')

        assert response.status_code == 201, response.text
        assert api.get(response.json()["id"]).json()["title"] == "No header"


@pytest.mark.postgresql
class TestStatementTimeout:
    @pytest.fixture
    def bounded(self, postgres: PostgresServer) -> Iterator[None]:
        url = postgres.create_database(f"bounded_{uuid.uuid4().hex[:8]}")
        engine = make_engine(url, pool_size=1, max_overflow=0, statement_timeout=0.2)
        token = current_engine.set(engine)
        yield
        current_engine.reset(token)
        engine.dispose()

    @pytest.mark.usefixtures("bounded")
    def test_a_slow_statement_is_cancelled(self) -> None:
        with (
            pytest.raises(sa_exc.OperationalError, match="statement timeout"),
            transaction() as connection,
        ):
            connection.execute(text("SELECT pg_sleep(2)"))

        with transaction() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "200ms"

    @pytest.mark.usefixtures("bounded")
    def test_the_timeout_ends_with_the_transaction(self) -> None:
        # PgBouncer in transaction mode hands the server connection to another client
        # afterwards; nothing set for this transaction may stay on it.
        with transaction() as connection:
            connection.execute(text("SELECT 1"))
        raw = current_engine.get().raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone() == ("0",)
        finally:
            raw.close()
