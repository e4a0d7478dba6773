import json
from pathlib import Path

import jwt
import pytest
import yaml
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from tests.support.api import SECRET
from tests.support.contract import SPEC
from tests.support.server import todo_api

OPERATION_IDS = {
    "listTasks",
    "createTask",
    "getTask",
    "updateTask",
    "deleteTask",
    "listTags",
    "renameTag",
    "deleteTag",
    "completeTask",
    "patchTask",
    "listTaskChanges",
    "health",
    "ready",
}
METHODS = {"get", "put", "post", "delete", "patch"}


class TestProbes:
    def test_health_needs_no_token(self, client: TestClient) -> None:
        response = client.get("/health")

        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    def test_ready_when_the_database_answers(self, client: TestClient) -> None:
        response = client.get("/ready")

        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


class TestContract:
    def test_the_contract_is_valid_openapi_3_0(self) -> None:
        validate(SPEC)
        assert SPEC["openapi"] == "3.0.3"

    def test_every_operation_is_named_summarised_and_lists_its_errors(self) -> None:
        operations = [
            operation
            for item in SPEC["paths"].values()
            for method, operation in item.items()
            if method in METHODS
        ]
        assert {op["operationId"] for op in operations} == OPERATION_IDS
        for operation in operations:
            assert operation["summary"]
            assert operation["description"]
            assert operation["responses"]
            if operation.get("security") != []:
                assert {"401", "403"} <= set(operation["responses"])

    def test_served_json_is_the_contract_with_its_component_names(self, client: TestClient) -> None:
        response = client.get("/api/openapi.json")

        assert response.status_code == 200
        served = response.json()
        assert served == json.loads(json.dumps(SPEC))
        task_schema = served["paths"]["/api/{user_id}/tasks/{task_id}"]["get"]["responses"]["200"]
        assert task_schema["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Task"
        }

    def test_served_yaml_is_the_file(self, client: TestClient) -> None:
        response = client.get("/api/openapi.yaml")

        assert response.status_code == 200
        assert yaml.safe_load(response.text) == SPEC

    def test_swagger_console_is_served(self, client: TestClient) -> None:
        response = client.get("/api/ui/")

        assert response.status_code == 200
        assert "swagger-ui" in response.text
        assert "/api/openapi.json" in response.text


class TestCommandLine:
    def test_token_prints_a_verifiable_short_lived_token(self, tmp_path: Path) -> None:
        result = todo_api(
            "token", "alice", "--ttl", "120", env={"BETTER_AUTH_SECRET": SECRET}, cwd=tmp_path
        )

        assert result.returncode == 0, result.stderr
        claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
        assert claims["sub"] == "alice"
        assert claims["exp"] - claims["iat"] == 120

    @pytest.mark.parametrize("command", [["serve"], ["token", "alice"]])
    def test_refuses_without_a_secret_and_says_what_to_set(
        self, tmp_path: Path, command: list[str]
    ) -> None:
        result = todo_api(*command, env={}, cwd=tmp_path)

        assert result.returncode != 0
        assert "BETTER_AUTH_SECRET" in result.stderr
        assert "Traceback" not in result.stderr

    def test_a_short_secret_is_refused_without_echoing_it(self, tmp_path: Path) -> None:
        result = todo_api(
            "token", "alice", env={"BETTER_AUTH_SECRET": "hunter2-short"}, cwd=tmp_path
        )

        assert result.returncode != 0
        assert "BETTER_AUTH_SECRET" in result.stderr
        assert "hunter2-short" not in result.stderr + result.stdout

    def test_reads_the_secret_from_a_dotenv_file(self, tmp_path: Path) -> None:
        (tmp_path / ".env").write_text(f"BETTER_AUTH_SECRET={SECRET}\n")

        result = todo_api("token", "bob", env={}, cwd=tmp_path)

        assert result.returncode == 0, result.stderr
        assert jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])["sub"] == "bob"

    def test_migrate_creates_the_sqlite_default_in_the_working_directory(
        self, tmp_path: Path
    ) -> None:
        result = todo_api("migrate", env={}, cwd=tmp_path)

        assert result.returncode == 0, result.stderr
        assert (tmp_path / "tasks.db").exists()
