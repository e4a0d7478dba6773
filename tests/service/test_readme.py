"""The README's quickstart session, run word for word against a real server."""

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import ROOT, SECRET
from tests.support.server import ServerProcess

SESSION = re.compile(r"<!-- readme-session.*?-->\s*```sh\n(.*?)```", re.DOTALL)
SYNC_SESSION = re.compile(r"<!-- readme-session: sync -->\s*```sh\n(.*?)```", re.DOTALL)


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A `todo-api serve` process in a folder that looks like a checkout after `make run`:
    its settings come from `.env`, as the README's session expects."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    (tmp_path / ".env").write_text(f"BETTER_AUTH_SECRET={SECRET}\nDATABASE_URL={database_url}\n")
    server = ServerProcess({}, tmp_path, command=[str(tmp_path / ".venv/bin/todo-api")])
    server.start()
    try:
        yield tmp_path, server.port
    finally:
        server.stop()


def json_documents(text: str) -> list[Any]:
    decoder, documents, position = json.JSONDecoder(), [], 0
    while position < len(text.rstrip()):
        document, position = decoder.raw_decode(text, position)
        documents.append(document)
        while position < len(text) and text[position].isspace():
            position += 1
    return documents


def run_session(script: str, folder: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=folder,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_the_quickstart_curl_session_works_word_for_word(served: tuple[Path, int]) -> None:
    folder, port = served
    match = SESSION.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert match, "the README has no readme-session block"
    script = match.group(1).replace("127.0.0.1:8000", f"127.0.0.1:{port}")

    result = run_session(script, folder)

    created, listed = json_documents(result.stdout)
    assert created["title"] == "Buy milk"
    assert created["user_id"] == "alice"
    assert created["due_date"] == "2026-12-01"
    assert created["priority"] == "high"
    assert created in listed


def test_the_syncing_clients_session_works_word_for_word(served: tuple[Path, int]) -> None:
    folder, port = served
    match = SYNC_SESSION.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert match, "the README has no sync session block"
    script = match.group(1).replace("127.0.0.1:8000", f"127.0.0.1:{port}")

    result = run_session(script, folder)

    created, replayed, patched, conflict, feed, since = json_documents(result.stdout)
    assert replayed == created
    assert created["title"] == "Buy oat milk"
    assert created["version"] == 1
    assert "idempotent-replayed: true" in (folder / "replayed.txt").read_text().lower()
    assert patched["version"] == 2
    assert patched["priority"] == "high"
    assert conflict["status"] == 412
    assert 'etag: "2"' in (folder / "conflict.txt").read_text().lower()
    assert feed["changes"][-1] == {"id": created["id"], "deleted": False, "task": patched}
    assert feed["has_more"] is False
    assert since["changes"] == [{"id": created["id"], "deleted": True, "task": None}]
