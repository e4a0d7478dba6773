"""Summarise a py-spy profile (`--format raw`): where the busy samples of a request go.

Idle frames (worker threads waiting for work, the event loop waiting for sockets, a
thread waiting on the database) are left out, so the shares are of CPU, not of time.
"""

import re
import sys
from collections import Counter
from pathlib import Path

# A thread blocked on the database: in psycopg2, or in the deadline's poll (db/deadline.py).
IDLE = (
    "Condition.wait",
    "do_execute (sqlalchemy",
    "wait (db/deadline.py",
    "Runner.run",
    "select (selectors",
    "_run_once",
)
# Each busy sample belongs to the innermost frame that names a component: a jsonschema
# frame called by the response validator is response validation, and so on.
COMPONENTS = (
    ("token verification", r"\(jwt/|service/tokens\.py|service/jwks\.py"),
    ("request validation", r"JsonBodyValidator|ParametersValidator|request_validation\.py"),
    ("response validation", r"ResponseBodyValidator|response_validation\.py"),
    ("JSON encoding and decoding", r"\(json/|jsonifier\.py"),
    ("SQLAlchemy and SQLModel", r"\((sqlalchemy|sqlmodel)/"),
    ("psycopg2", r"\(psycopg2/"),
    ("handlers, queries and service (ours)", r"\((handlers|db|service)/"),
    ("thread hand-off (anyio, threading)", r"\(anyio/|\(threading\.py"),
    ("our dispatch (plans, binding)", r"\(service/dispatch\.py"),
    ("Connexion routing, security, parameters", r"\(connexion/"),
    ("Starlette", r"\(starlette/"),
    ("HTTP (uvicorn, h11)", r"\((uvicorn|h11)/"),
)


def busy_stacks(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any(idle in frames[-1] for idle in IDLE):
            stacks.append((frames, int(count)))
    return stacks


def library(frame: str) -> str:
    match = re.search(r"\(([^/ ]+)/", frame) or re.search(r"\(([^:)]+)", frame)
    return match.group(1) if match else frame


def component(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, pattern in COMPONENTS:
            if re.search(pattern, frame):
                return name
    return "other (start-up, imports, asyncio)"


def summarise(path: Path) -> str:
    stacks = busy_stacks(path)
    total = sum(count for _, count in stacks) or 1
    own: Counter[str] = Counter()
    for frames, count in stacks:
        own[library(frames[-1])] += count
    lines = [f"{total} busy samples in {path.name}", "self time by library:"]
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in own.most_common(12)]
    by_component: Counter[str] = Counter()
    for frames, count in stacks:
        by_component[component(frames)] += count
    lines.append("by component (innermost named frame):")
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in by_component.most_common()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1])))
