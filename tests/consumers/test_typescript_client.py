"""A frontend's TypeScript client: openapi-typescript types (from the contract file and from
the served contract) and openapi-fetch calls in tests/consumers/clients/tasks-client.ts, compiled by
`tsc --strict` and run with Node against the live server."""

import json
import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import CONTRACT
from tests.support.contract import assert_problem, assert_task
from tests.support.server import ServerProcess

CLIENTS = Path(__file__).resolve().parent / "clients"
BIN = CLIENTS / "node_modules" / ".bin"
GENERATED = CLIENTS / "generated" / "tasks-api.d.ts"
PROGRAM = CLIENTS / "build" / "tasks-client.js"
NAMED_SCHEMAS = (
    "Task",
    "TaskCreate",
    "TaskUpdate",
    "TaskCompletion",
    "TaskChanges",
    "TaskChange",
    "Error",
)


def node_tool(name: str, *args: str) -> str:
    assert (BIN / name).exists(), "Node tools missing: run `make test` (it runs `npm ci`)."
    done = subprocess.run(
        [str(BIN / name), *args], cwd=CLIENTS, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def generate_types(source: str, output: Path) -> str:
    # Without --default-non-nullable=false every property with a default becomes required,
    # and `{title}` alone would no longer type-check as a TaskCreate.
    node_tool("openapi-typescript", source, "--default-non-nullable=false", "-o", str(output))
    return output.read_text(encoding="utf-8")


# Session-wide: pytest runs every SQLite test before any PostgreSQL one, across modules.
@pytest.fixture(scope="session")
def compiled_program() -> Path:
    GENERATED.parent.mkdir(exist_ok=True)
    generate_types(str(CONTRACT), GENERATED)
    node_tool("tsc", "--noEmit", "--strict", "-p", ".")
    node_tool("tsc", "-p", ".")
    return PROGRAM


def test_served_contract_generates_the_same_named_types(
    live_server: ServerProcess, tmp_path: Path
) -> None:
    from_file = generate_types(str(CONTRACT), tmp_path / "from-file.d.ts")
    from_server = generate_types(
        f"{live_server.base_url}/api/openapi.json", tmp_path / "served.d.ts"
    )

    assert from_server == from_file
    schemas = from_file.split("    schemas: {", 1)[1].split("\n    };", 1)[0]
    for name in NAMED_SCHEMAS:
        assert f"\n        {name}: {{" in schemas, f"no named type {name}"


def test_compiled_program_runs_every_operation(
    live_server: ServerProcess, compiled_program: Path, token_for: Callable[..., str]
) -> None:
    user_id = f"ts-{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "API_URL": live_server.base_url, "USER_ID": user_id}
    done = subprocess.run(
        ["node", str(compiled_program)],
        env={**env, "TOKEN": token_for(user_id)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)

    kept = summary["kept"]
    assert_task(kept)
    assert kept["title"] == "File the tax return today"
    assert kept["due_date"] is None
    assert [problem["status"] for problem in summary["problems"]] == [404, 422]
    assert summary["remaining"] == {"tasks": [kept], "total": 1}
    synced = summary["synced"]
    assert synced["replayed"] == "true"
    assert synced["stale"]["status"] == 412
    stored = live_server.stored_tasks(user_id, token_for(user_id))
    oat_milk = next(task for task in stored if task["title"] == "Buy oat milk")
    assert (oat_milk["version"], oat_milk["priority"]) == (2, "high")
    assert [task["id"] for task in stored] == [oat_milk["id"], kept["id"]]
    # The feed, in commit order: the renamed task, the deleted milk, then the oat milk.
    assert [(c["id"], c["deleted"], c["task"]) for c in synced["changes"]] == [
        (kept["id"], False, kept),
        (summary["deleted"], True, None),
        (oat_milk["id"], False, oat_milk),
    ]
    deleted = httpx.get(
        f"{live_server.base_url}/api/{user_id}/tasks/{summary['deleted']}",
        headers={"Authorization": f"Bearer {token_for(user_id)}"},
    )
    assert_problem(deleted, 404)
