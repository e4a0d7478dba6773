"""A bare Connexion AsyncApp: one authenticated GET answered from memory, no database.

`make bench-bare` serves it the same way the Tasks API is benchmarked, which measures what
the framework alone costs per request on this machine: the floor under the API's figures.
"""

from pathlib import Path
from typing import Any

import jwt
from connexion import AsyncApp

SECRET = "bench-secret-" + "0123456789abcdef" * 4
TASK = {"id": 1, "title": "In memory", "completed": False, "priority": "medium"}


def check_token(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, SECRET, algorithms=["HS256"])
    return claims


def get_task(user_id: str, task_id: int) -> dict[str, Any]:
    return {**TASK, "id": task_id, "user_id": user_id}


def create_app() -> AsyncApp:
    app = AsyncApp(__name__)
    app.add_api(Path(__file__).with_name("bare.yaml"))
    return app
