"""The contract holds under fuzzing: Schemathesis generates requests from openapi/tasks.yaml
(examples, coverage, fuzzing, then create -> read -> update -> toggle -> delete sequences along
the contract's links) and runs every built-in check on each response, on SQLite and PostgreSQL.

CONTRACT_SCALE multiplies the examples (`make fuzz` sets 10); CONTRACT_SEED replays a run
(CI always uses a fixed seed)."""

import json
import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
import yaml
from connexion import AsyncApp
from schemathesis.core.failures import FailureGroup
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from service.tokens import TokenVerifier
from tests.support.api import CONTRACT, ROOT, SECRET
from tests.support.contract_hooks import SignedIn

CONFIG = ROOT / "schemathesis.toml"
EXAMPLES = 300 * int(os.environ.get("CONTRACT_SCALE", "1"))
CI_SEED = 20261124
SEED = os.environ.get("CONTRACT_SEED") or (str(CI_SEED) if os.environ.get("CI") else None)
TOKEN_TTL = 24 * 3600
MAX_STATEFUL_RUNS = 10
# The signed-in user every case acts as, and a second user whose credentials
# `object_level_authorization` replays the first one's reads with.
OWNER, PEER = (f"user-{uuid.uuid4().hex[:12]}" for _ in range(2))


class AppUnderTest:
    """The schema is built at import time, before the session's apps exist; each
    backend's tests point this at their own app."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "use the `under_test` fixture"
        await self.app(scope, receive, send)


UNDER_TEST = AppUnderTest()


def _identities(directory: Path) -> Path:
    """A Web Fuzzing Commons auth document: a bearer token for each user."""
    verifier = TokenVerifier(SECRET)
    users = {"owner": OWNER, "peer": PEER}
    document = {
        "auth": [
            {
                "name": name,
                "fixedHeaders": [
                    {"name": "Authorization", "value": f"Bearer {verifier.mint(uid, TOKEN_TTL)}"}
                ],
            }
            for name, uid in users.items()
        ]
    }
    path = directory / "identities.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _load_schema() -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_path(CONFIG)
    if SEED is not None:
        config.update(seed=int(SEED), max_failures=None)
    project = config.projects.default
    project.generation.update(max_examples=EXAMPLES)
    with tempfile.TemporaryDirectory() as directory:
        project.auth.update(wfc_path=str(_identities(Path(directory))), wfc_user="owner")
        assert project.auth.wfc is not None
        project.auth.wfc.peers = ["owner", "peer"]
        schema = schemathesis.openapi.from_path(CONTRACT, config=config)
    schema.app = UNDER_TEST
    return schema


# Before loading: the hook narrows the path's user id to this user.
SignedIn.user_id = OWNER
schema = _load_schema()


@pytest.fixture(scope="session")
def under_test(app: AsyncApp, database_url: str) -> Iterator[str]:
    """Send the cases to this database's app; yields the database's name."""
    UNDER_TEST.app = app
    yield make_url(database_url).get_backend_name()
    UNDER_TEST.app = None


def test_served_contract_is_the_file(client: TestClient) -> None:
    # Loading the file keeps the component names; the app serves exactly this document.
    served = client.get("/api/openapi.json").json()
    assert served == yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))


@schema.parametrize()
def test_operation(
    case: schemathesis.Case[Any], under_test: str, case_counts: Counter[str]
) -> None:
    assert case.meta is not None
    case_counts[f"{under_test} {case.meta.phase.name.value}"] += 1
    case.call_and_validate()


def test_stateful(under_test: str, case_counts: Counter[str]) -> None:
    failures: list[FailureGroup] = []
    scenarios = f"{under_test} stateful scenarios"

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case[Any]) -> None:
            case_counts[f"{under_test} stateful"] += 1

        def validate_response(self, *args: Any, **kwargs: Any) -> None:
            try:
                super().validate_response(*args, **kwargs)
            except FailureGroup as failure:
                failures.append(failure)
                raise

        def teardown(self) -> None:
            case_counts[scenarios] += 1
            super().teardown()

    # Schemathesis' own settings for sequences: no shrinking, which would replay them
    # against a database they have already changed.
    settings = hypothesis.settings(Sequences.TestCase.settings, max_examples=EXAMPLES)
    for attempt in range(MAX_STATEFUL_RUNS):
        if SEED is not None:
            hypothesis.seed(int(SEED) + attempt)(Sequences)
        try:
            Sequences.run(settings=settings)
            return
        except hypothesis.errors.Flaky:
            # A sequence draws ids from earlier responses, so Hypothesis replaying one
            # against the changed database draws differently and gives up. Like
            # Schemathesis' own runner, report the check failures found before that,
            # otherwise carry on with new sequences.
            if failures:
                raise failures[0] from None
            if case_counts[scenarios] >= EXAMPLES:
                return
