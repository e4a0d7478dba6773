"""A frontend's TypeScript client: openapi-typescript types (from the contract file and from
the served contract) and openapi-fetch calls in tests/consumers/clients/tasks-client.ts, compiled by
`tsc --strict` and run with Node against the live server; and the README's "Building a
frontend" code, extracted from the README, compiled and run the same way."""

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tests.support.api import CONTRACT, README, SECRET
from tests.support.contract import assert_problem, assert_task
from tests.support.server import ServerProcess

CLIENTS = Path(__file__).resolve().parent / "clients"
BIN = CLIENTS / "node_modules" / ".bin"
GENERATED = CLIENTS / "generated" / "tasks-api.d.ts"
PROGRAM = CLIENTS / "build" / "tasks-client.js"
NAMED_SCHEMAS = ("Task", "TaskCreate", "TaskUpdate", "TaskCompletion", "Error", "Violation")
FRONTEND = CLIENTS / "frontend"
FRONTEND_PROGRAM = CLIENTS / "build" / "frontend-check.js"
GUIDE = re.compile(r"## Building a frontend\n(.*?)\n## ", re.DOTALL)
SNIPPET = re.compile(r"<!-- frontend-snippet: (\S+) -->\s*```ts\n(.*?)```", re.DOTALL)
WRAPPER = re.compile(r"<!-- nextjs-wrapper -->\s*```ts\n(.*?)```", re.DOTALL)
GENERATE = re.compile(r"<!-- frontend-generate -->\s*```sh\n(.*?)```", re.DOTALL)
CORS_ENV = re.compile(r"<!-- frontend-cors-env -->\s*```sh\n(.*?)```", re.DOTALL)
# Next.js resolves `./api-types`; Node's ES modules want the file's own `.js` name.
RELATIVE_IMPORT = re.compile(r'(from "\./[\w-]+)(")')
README_ORIGIN = "http://127.0.0.1:8000"


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
    assert live_server.stored_tasks(user_id, token_for(user_id)) == [kept]
    deleted = httpx.get(
        f"{live_server.base_url}/api/{user_id}/tasks/{summary['deleted']}",
        headers={"Authorization": f"Bearer {token_for(user_id)}"},
    )
    assert_problem(deleted, 404)


def guide() -> str:
    match = GUIDE.search(README.read_text(encoding="utf-8"))
    assert match, "the README has no 'Building a frontend' section"
    return match.group(1)


def extract_snippets(into: Path) -> dict[str, str]:
    """The README's frontend modules, written as files: each `lib/...` file is its blocks
    in order, with `.js` added to relative imports (the only change)."""
    files: dict[str, str] = {}
    for name, code in SNIPPET.findall(guide()):
        files[name] = files.get(name, "") + ("\n" if name in files else "") + code
    for name, code in files.items():
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(RELATIVE_IMPORT.sub(r"\1.js\2", code), encoding="utf-8")
    return files


def generate_as_the_readme_says(base_url: str) -> None:
    """The README's `npx openapi-typescript` line, against the live server."""
    match = GENERATE.search(guide())
    assert match, "the README has no frontend-generate block"
    [command] = [line for line in match.group(1).splitlines() if line.strip()]
    program, *args = command.replace(README_ORIGIN, base_url).split()
    assert program == "npx"
    FRONTEND.mkdir(exist_ok=True)
    assert (BIN / args[0]).exists()
    done = subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=FRONTEND, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="session")
def frontend_program(live_server: ServerProcess) -> Path:
    shutil.rmtree(FRONTEND, ignore_errors=True)
    generate_as_the_readme_says(live_server.base_url)
    extract_snippets(FRONTEND)
    node_tool("tsc", "--noEmit", "--strict", "-p", "tsconfig.frontend.json")
    node_tool("tsc", "-p", "tsconfig.frontend.json")
    return FRONTEND_PROGRAM


def test_every_typescript_block_of_the_guide_is_run_or_a_marked_wrapper() -> None:
    text = guide()
    blocks = re.findall(r"```ts\n", text)
    files = extract_snippets(FRONTEND)
    wrappers = WRAPPER.findall(text)

    assert sorted(files) == [
        "lib/api-token.ts",
        "lib/fetch-json.ts",
        "lib/field-errors.ts",
        "lib/sign-token.ts",
        "lib/tasks-api.ts",
    ]
    assert len(blocks) == len(SNIPPET.findall(text)) + len(wrappers)
    [route] = wrappers
    assert "signApiToken(session.user.id, process.env.BETTER_AUTH_SECRET!)" in route


def test_the_guides_code_runs_against_the_live_server(
    live_server: ServerProcess, frontend_program: Path, token_for: Callable[..., str]
) -> None:
    user_id = f"next-{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "API_URL": live_server.base_url, "USER_ID": user_id, "SECRET": SECRET}
    done = subprocess.run(
        ["node", str(frontend_program)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)

    created, kept, toggled = summary["created"], summary["kept"], summary["toggled"]
    for task in (created, kept, toggled):
        assert_task(task)
    assert (created["title"], created["priority"]) == ("Buy milk", "high")
    assert summary["rejected"] == {
        "fieldErrors": {
            "title": "'' should be non-empty",
            "due_date": "'2026-02-30' is not a 'date'",
        }
    }
    assert toggled["id"] == created["id"]
    assert toggled["completed"] is True
    assert summary["completed"] == {"tasks": [toggled], "total": 1}
    assert summary["pending"] == {"tasks": [kept], "total": 1}
    assert summary["unknown"] == {
        "status": 422,
        "fields": {
            "category": "not a field of TaskCreate",
            "title": "'' should be non-empty",
            "priority": "'urgent' is not one of ['low', 'medium', 'high']",
            "due_date": "'2026-02-30' is not a 'date'",
        },
    }
    assert summary["parameters"] == {
        "status": 422,
        "fields": {"status": "'done' is not one of ['all', 'pending', 'completed']"},
    }
    assert summary["deletedAgain"] == {"status": 404, "fields": {}}
    assert summary["deletedByWrapper"] == "undefined"
    assert live_server.stored_tasks(user_id, token_for(user_id)) == [kept]


def test_the_guides_cors_settings_let_a_credentialed_frontend_in(
    client_with: Callable[..., TestClient],
) -> None:
    match = CORS_ENV.search(guide())
    assert match, "the README has no frontend-cors-env block"
    variables = dict(line.split("=", 1) for line in match.group(1).splitlines() if "=" in line)
    [origin] = variables["CORS_ORIGINS"].split(",")
    client = client_with(
        better_auth_secret=SECRET, **{name.lower(): value for name, value in variables.items()}
    )

    preflight = client.options(
        "/api/someone/tasks",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert preflight.headers["access-control-allow-credentials"] == "true"
