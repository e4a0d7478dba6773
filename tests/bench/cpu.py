"""CPU per request in-process: the ASGI app called directly, no server, no network.

A micro-benchmark for framework changes while the machine is too busy for `make bench`:
the app of a checkout (default: this one) on a throwaway SQLite database, each request
kind repeated many times, process CPU time (every thread, so the handler's worker thread
counts) divided by the number of requests. SQLite's own work is in the figure, so compare
two checkouts by ratio in one alternating run, never with `make bench`'s figures:

    python -m tests.bench.cpu --source DIR_A --source DIR_B --rounds 5 --requests 2000
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SECRET = "bench-secret-" + "0123456789abcdef" * 4
KINDS = ("get", "list", "create", "update", "complete")


def _scope(
    method: str, path: str, query: str, headers: list[tuple[bytes, bytes]]
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "extensions": {},
    }


async def _call(app: Any, scope: dict[str, Any], body: bytes) -> tuple[int, bytes]:
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _measure(requests: int, kinds: list[str]) -> dict[str, float]:
    from db.migrate import upgrade
    from service.app import create_app
    from service.settings import Settings
    from service.tokens import TokenVerifier

    url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    upgrade(url)
    app = create_app(Settings(database_url=url, better_auth_secret=SECRET, _env_file=None))
    user = "bench-user"
    token = TokenVerifier(SECRET).mint(user, 3600)
    auth = [(b"authorization", f"Bearer {token}".encode()), (b"host", b"127.0.0.1")]
    json_headers = [*auth, (b"content-type", b"application/json")]
    base = f"/api/{user}/tasks"

    async def request(
        method: str, path: str, query: str = "", body: bytes = b"", expect: int = 200
    ) -> bytes:
        headers = [*json_headers, (b"content-length", str(len(body)).encode())] if body else auth
        status, payload = await _call(app, _scope(method, path, query, headers), body)
        assert status == expect, (method, path, status, payload[:300])
        return payload

    created = [
        json.loads(await request("POST", base, body=b'{"title": "seed %d"}' % i, expect=201))["id"]
        for i in range(60)
    ]
    one = f"{base}/{created[0]}"
    actions: dict[str, tuple[str, str, str, bytes, int]] = {
        "get": ("GET", one, "", b"", 200),
        "list": ("GET", base, "status=pending&limit=50", b"", 200),
        "create": ("POST", base, "", b'{"title": "Buy milk"}', 201),
        "update": ("PUT", one, "", b'{"title": "Renamed", "priority": "high"}', 200),
        "complete": ("PATCH", f"{one}/complete", "", b"", 200),
    }
    figures = {}
    for kind in kinds:
        method, path, query, body, expect = actions[kind]
        for _ in range(min(200, requests)):  # warm-up
            await request(method, path, query, body, expect)
        start = time.process_time()
        for _ in range(requests):
            await request(method, path, query, body, expect)
        figures[kind] = (time.process_time() - start) * 1000 / requests
    return figures


def _one_run(source: Path, requests: int, kinds: list[str]) -> dict[str, float]:
    """The measurement in a fresh interpreter importing `source`'s code."""
    env = {**os.environ, "PYTHONPATH": str(source), "LOG_LEVEL": "warning"}
    script = str(Path(__file__))
    code = (
        f"import asyncio, json, runpy; measure = runpy.run_path({script!r})['_measure'];"
        f"print(json.dumps(asyncio.run(measure({requests}, {kinds!r}))))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code],
        cwd=source,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    figures: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", action="append", type=Path, help="checkout(s) to compare")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    sources = [s.resolve() for s in (args.source or [ROOT])]
    kinds = args.kinds.split(",")
    results: dict[Path, list[dict[str, float]]] = {s: [] for s in sources}
    for round_ in range(args.rounds):
        for source in sources:  # alternating A B A B
            figures = _one_run(source, args.requests, kinds)
            results[source].append(figures)
            print(f"round {round_ + 1} {source}: {figures}", file=sys.stderr)
    print(
        f"{'kind':<10}" + "".join(f"{s.name[:22]:>26}" for s in sources) + "   ratio (last/first)"
    )
    for kind in kinds:
        medians = [statistics.median(r[kind] for r in results[s]) for s in sources]
        spreads = [
            (max(r[kind] for r in results[s]) - min(r[kind] for r in results[s])) / m * 100
            for s, m in zip(sources, medians, strict=True)
        ]
        cells = "".join(
            f"{m:>14.3f} ms ±{sp:>4.0f}%   " for m, sp in zip(medians, spreads, strict=True)
        )
        print(f"{kind:<10}{cells}{medians[-1] / medians[0]:>8.2f}")


if __name__ == "__main__":
    main()
