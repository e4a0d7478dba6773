"""Interop with the real better-auth library (tests/consumers/interop, pinned by its lock file): its
client signs users up and fetches their JWTs exactly as a frontend does, the instance serves
its own JWKS on loopback, and the API accepts those tokens on their owner's path only."""

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from starlette.testclient import TestClient

from service.settings import JWKS_PATH
from tests.support.api import ROOT, Api
from tests.support.auth import OPERATIONS
from tests.support.contract import assert_problem
from tests.support.jwks import ALGORITHMS

INTEROP = Path(__file__).resolve().parent / "interop"
README = ROOT / "README.md"
SNIPPET = re.compile(r"<!-- better-auth-snippet -->\s*```js\n(.*?)```", re.DOTALL)
ENVIRONMENT = re.compile(r"<!-- better-auth-env -->\s*```sh\n(.*?)```", re.DOTALL)
KEY_TYPES = {"EdDSA": "OKP", "ES256": "EC", "ES512": "EC", "RS256": "RSA", "PS256": "RSA"}


def _require(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        pytest.fail(f"{program} is needed for the better-auth interop test (Node 20+ and npm)")
    return found


@pytest.fixture(scope="session")
def better_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Better Auth instances by algorithm: {alg, baseURL, users: [{id, email, request}]},
    `request` being the API request the README's frontend code made: {path, headers}."""
    node, npm = _require("node"), _require("npm")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
        cwd=INTEROP,
        check=True,
        timeout=600,
    )
    log = tmp_path_factory.mktemp("better-auth") / "stderr.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [node, "better-auth.mjs", *ALGORITHMS],
            cwd=INTEROP,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdin
    assert process.stdout
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    line = process.stdout.readline()
    watchdog.cancel()
    try:
        if not line:
            pytest.fail(f"better-auth did not start: {log.read_text()}")
        yield {instance["alg"]: instance for instance in json.loads(line)["instances"]}
    finally:
        process.stdin.close()  # the script serves until its stdin closes
        process.wait(timeout=30)
        process.stdout.close()


@pytest.fixture(params=ALGORITHMS)
def instance(request: pytest.FixtureRequest, better_auth: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = better_auth[request.param]
    return found


def readme_variables() -> list[str]:
    """The backend variables the README's "Using with Better Auth" section sets."""
    match = ENVIRONMENT.search(README.read_text(encoding="utf-8"))
    assert match, "the README has no better-auth-env block"
    return [line.split("=", 1)[0] for line in match.group(1).splitlines() if "=" in line]


@pytest.fixture
def client(instance: dict[str, Any], client_with: Callable[..., TestClient]) -> TestClient:
    """The API configured as the README says, with this instance's URL."""
    return client_with(**{name.lower(): instance["baseURL"] for name in readme_variables()})


def test_the_readme_snippets_are_the_code_this_test_runs() -> None:
    snippets = SNIPPET.findall(README.read_text(encoding="utf-8"))
    script = {line.strip() for line in (INTEROP / "better-auth.mjs").read_text().splitlines()}
    code = [line.strip() for snippet in snippets for line in snippet.splitlines()]

    assert len(snippets) == 3
    assert [
        line for line in code if line and not line.startswith("//") and line not in script
    ] == []
    assert readme_variables() == ["BETTER_AUTH_URL"]


TOKEN_CLIENT = re.compile(r"interface TokenClient \{\n.*?\n\}", re.DOTALL)
TSC = ROOT / "tests" / "consumers" / "clients" / "node_modules" / ".bin" / "tsc"
TSC_OPTIONS = [
    "--noEmit",
    "--strict",
    "--skipLibCheck",
    "--target",
    "es2022",
    "--module",
    "nodenext",
]


def test_the_frontend_guides_token_client_fits_better_auths_own_client(
    better_auth: dict[str, Any],
) -> None:
    """README "Building a frontend" types `authClient` structurally; the real client (with
    the `jwtClient()` plugin, as the README sets it up) must fit that type under tsc."""
    match = TOKEN_CLIENT.search(README.read_text(encoding="utf-8"))
    assert match, "the README's frontend guide has no TokenClient interface"
    check = INTEROP / "token-client-check.mts"
    check.write_text(
        'import { createAuthClient } from "better-auth/client";\n'
        'import { jwtClient } from "better-auth/client/plugins";\n'
        f"{match.group(0)}\n"
        "export const client: TokenClient = createAuthClient({ plugins: [jwtClient()] });\n",
        encoding="utf-8",
    )
    try:
        done = subprocess.run(
            [str(TSC), *TSC_OPTIONS, check.name],
            cwd=INTEROP,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    finally:
        check.unlink()
    assert done.returncode == 0, done.stdout + done.stderr


def token_of(user: dict[str, Any]) -> str:
    authorization: str = user["request"]["headers"]["Authorization"]
    assert authorization.startswith("Bearer ")
    return authorization.removeprefix("Bearer ")


def test_the_tokens_and_jwks_are_what_the_verifier_expects(instance: dict[str, Any]) -> None:
    user = instance["users"][0]
    token = token_of(user)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    jwks = httpx.get(f"{instance['baseURL']}{JWKS_PATH}", timeout=10).json()
    published = {key["kid"]: key for key in jwks["keys"]}

    assert header == {"alg": instance["alg"], "kid": header["kid"]}
    assert published[header["kid"]]["alg"] == instance["alg"]
    assert published[header["kid"]]["kty"] == KEY_TYPES[instance["alg"]]
    assert "use" not in published[header["kid"]]
    assert claims["sub"] == claims["id"] == user["id"]
    assert claims["email"] == user["email"]
    assert claims["iss"] == claims["aud"] == instance["baseURL"]
    assert claims["exp"] - claims["iat"] == 15 * 60


def test_accepted_on_the_owners_path(client: TestClient, instance: dict[str, Any]) -> None:
    ada = instance["users"][0]
    owner = Api(client, ada["id"], token_of(ada))
    task = owner.create(title=f"Signed in with Better Auth ({instance['alg']})")

    # The request exactly as the README's frontend code made it.
    response = client.get(ada["request"]["path"], headers=ada["request"]["headers"])

    assert ada["request"]["path"] == f"/api/{ada['id']}/tasks"
    assert response.status_code == 200
    assert task["user_id"] == ada["id"]
    assert task in response.json()
    assert owner.get(task["id"]).json() == task


def test_403_on_another_users_path_on_every_operation(
    client: TestClient, instance: dict[str, Any]
) -> None:
    ada, grace = instance["users"]
    theirs = Api(client, grace["id"], token_of(grace))
    task = theirs.create(title="Grace's")
    before = theirs.list().json()

    for operation in OPERATIONS:
        method, path = operation.values
        task_path = str(path).replace("/1", f"/{task['id']}")
        target = f"/api/{grace['id']}/tasks{task_path}"
        response = client.request(str(method), target, headers=ada["request"]["headers"])
        problem = assert_problem(response, 403)
        assert problem["detail"] == "The token does not belong to this user."

    assert theirs.list().json() == before
