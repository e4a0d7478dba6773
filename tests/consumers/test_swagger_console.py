"""The Swagger console (/api/ui/) in a real browser: Debian's Chromium driven by Playwright.
A person authorizes with a token from `todo-api token`, creates and lists through
"Try it out", and is refused after logging out. Screenshots of each step go to
tests/artifacts/swagger-console/<backend>/."""

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import FloatRect, Locator, Page, expect, sync_playwright

from tests.support.api import ARTIFACTS, SECRET
from tests.support.server import TODO_API, ServerProcess

CHROMIUM = "/usr/bin/chromium"
# Playwright's own browser download cannot work here; these flags keep the system Chromium
# headless, quiet (no network of its own) and fresh.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000


def cli_token(user_id: str) -> str:
    """A token exactly as a person gets one for the console."""
    done = subprocess.run(
        [*TODO_API, "token", user_id],
        env={**os.environ, "BETTER_AUTH_SECRET": SECRET},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    assert Path(CHROMIUM).exists(), "Chromium is missing: run `make test` (it installs it)."
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1000},
        )
        context.set_default_timeout(TIMEOUT_MS)
        yield context.new_page()
        context.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    backend: str = request.node.callspec.params["database_url"]
    folder = ARTIFACTS / "swagger-console" / backend
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Console:
    """The steps a person takes in Swagger UI, each ending in a screenshot."""

    def __init__(self, page: Page, shots: Path) -> None:
        self.page = page
        self.shots = shots

    def snap(self, name: str) -> None:
        self.page.screenshot(path=self.shots / f"{name}.png")

    def snap_answer(self, name: str, operation: Locator) -> None:
        """From the operation's bar (its padlock shows the authorization) down to the
        server's answer, leaving out the documented responses below it."""
        top = operation.bounding_box()
        bottom = operation.locator(".live-responses-table").bounding_box()
        assert top is not None
        assert bottom is not None
        height = bottom["y"] + bottom["height"] - top["y"]
        # Boxes are relative to the viewport; a full-page clip is relative to the page.
        page_y = top["y"] + self.page.evaluate("window.scrollY")
        clip = FloatRect(x=top["x"], y=page_y, width=top["width"], height=height)
        self.page.screenshot(path=self.shots / f"{name}.png", full_page=True, clip=clip)

    def authorize(self, token: str) -> None:
        self.page.click("button.authorize")
        dialog = self.page.locator(".modal-ux")
        dialog.get_by_label("auth-bearer-value").fill(token)
        dialog.locator("button.authorize").click()
        expect(dialog.get_by_role("button", name="Logout")).to_be_visible()
        self.snap("02-authorized")
        dialog.locator("button.btn-done").click()

    def log_out(self) -> None:
        self.page.click("button.authorize")
        dialog = self.page.locator(".modal-ux")
        dialog.get_by_role("button", name="Logout").click()
        expect(dialog.get_by_label("auth-bearer-value")).to_be_visible()
        dialog.locator("button.btn-done").click()

    def open(self, operation_id: str, user_id: str) -> Locator:
        operation = self.page.locator(f"#operations-tasks-{operation_id}")
        operation.locator(".opblock-summary").click()
        operation.locator("button.try-out__btn").click()
        operation.locator('tr[data-param-name="user_id"] input').fill(user_id)
        return operation

    def execute(self, operation: Locator, status: int) -> dict[str, object] | list[object]:
        operation.locator("button.execute").click()
        live = operation.locator(".live-responses-table .response")
        expect(live.locator(".response-col_status")).to_have_text(str(status))
        answer: dict[str, object] | list[object] = json.loads(
            live.locator(".microlight").first.inner_text()
        )
        return answer


def test_authorize_create_list_and_log_out(
    live_server: ServerProcess, page: Page, shots: Path
) -> None:
    user_id = f"console-{uuid.uuid4().hex[:8]}"
    title = f"Made in the console {uuid.uuid4().hex[:6]}"
    console = Console(page, shots)
    page.goto(f"{live_server.base_url}/api/ui/")
    info = page.locator(".swagger-ui .information-container")
    for topic in ("Authentication.", "Errors.", "Partial updates.", "JSON Merge Patch"):
        expect(info).to_contain_text(topic)
    console.snap("01-console")

    console.authorize(cli_token(user_id))
    create = console.open("createTask", user_id)
    create.locator(".body-param textarea").fill(json.dumps({"title": title}))
    created = console.execute(create, 201)
    console.snap_answer("03-created-201", create)
    assert isinstance(created, dict)
    assert created["title"] == title
    assert created["user_id"] == user_id

    listing = console.open("listTasks", user_id)
    listed = console.execute(listing, 200)
    console.snap_answer("04-listed-200", listing)
    assert listed == [created]

    console.log_out()
    refused = console.execute(listing, 401)
    console.snap_answer("05-logged-out-401", listing)
    assert isinstance(refused, dict)
    assert refused["detail"]

    assert live_server.stored_tasks(user_id, cli_token(user_id)) == [created]


def test_every_request_body_offers_its_examples(
    live_server: ServerProcess, page: Page, shots: Path
) -> None:
    page.goto(f"{live_server.base_url}/api/ui/")
    expected = {
        "createTask": ["Only a title", "Every field"],
        "updateTask": ["Change the title only", "Raise the priority and clear the due date"],
        "completeTask": ["Mark as done"],
    }
    for operation_id, summaries in expected.items():
        operation = page.locator(f"#operations-tasks-{operation_id}")
        operation.locator(".opblock-summary").click()
        choices = operation.locator(".opblock-section-request-body .examples-select option")
        expect(choices).to_have_text(summaries)
        expect(operation.locator(".body-param__example")).to_contain_text('"')
    Console(page, shots).snap("06-request-body-examples")
