"""The wheel is what a deploy installs: built from the tree, installed non-editable into a
fresh virtualenv outside the checkout, it migrates and serves with the contract inside it."""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import ROOT, SECRET
from tests.support.server import ServerProcess

UV = ROOT / ".tools" / "bin" / "uv"


def uv(*args: str, cwd: Path = ROOT) -> str:
    result = subprocess.run(
        [str(UV), *args],
        cwd=cwd,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv holding the wheel and the locked runtime dependencies, nothing else."""
    folder = tmp_path_factory.mktemp("wheel")
    uv("build", "--wheel", "--out-dir", str(folder / "dist"))
    (wheel,) = (folder / "dist").glob("todo_api-*.whl")
    requirements = folder / "requirements.txt"
    requirements.write_text(uv("export", "--frozen", "--no-dev", "--no-emit-project"))
    venv = folder / "venv"
    uv("venv", "--python", "python3", str(venv))
    python = str(venv / "bin" / "python")
    uv("pip", "install", "--python", python, "-r", str(requirements), str(wheel))
    return venv


@pytest.fixture(scope="module")
def served(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("deploy")
    env = {"DATABASE_URL": f"sqlite:///{workdir / 'tasks.db'}", "BETTER_AUTH_SECRET": SECRET}
    todo_api = str(installed / "bin" / "todo-api")
    migrated = subprocess.run(
        [todo_api, "migrate"],
        cwd=workdir,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    server = ServerProcess(env, workdir, command=[todo_api])
    server.start()
    yield server.base_url
    server.stop()


def test_the_wheel_carries_the_contract_and_no_checkout_is_used(installed: Path) -> None:
    site = next((installed / "lib").glob("python3*/site-packages"))

    assert (site / "openapi" / "tasks.yaml").is_file()
    assert {path.name for path in (site / "handlers").glob("*.py")} >= {"tasks.py", "health.py"}
    assert not list(site.glob("*.pth")), "a non-editable install has no path hook to a checkout"


def test_the_installed_wheel_migrates_and_serves(served: str) -> None:
    assert httpx.get(f"{served}/health").json() == {"status": "ok"}
    contract = httpx.get(f"{served}/api/openapi.json").json()
    assert {"Task", "TaskCreate", "TaskUpdate", "Error"} <= set(contract["components"]["schemas"])
    console = httpx.get(f"{served}/api/ui/")
    assert console.status_code == 200
    assert "swagger-ui" in console.text
