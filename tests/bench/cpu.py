"""CPU per request in-process: the ASGI app called directly, no server, no network.

A micro-benchmark for framework changes while the machine is too busy for `make bench`:
the app of a checkout (default: this one) on a throwaway SQLite database (`--postgres`: a
throwaway PostgreSQL, so the driver's and SQLAlchemy's work on it count too), each request
kind repeated many times, process CPU time (every thread, so the handler's worker thread
counts) divided by the number of requests. SQLite's own work is in the figure, so compare
by ratio in one run, never with `make bench`'s figures:

    python -m tests.bench.cpu --source DIR_A --source DIR_B --rounds 5 --requests 2000

On a busy machine, compare variants of this checkout's app inside one process instead
(batches of 25 requests alternate between them, so other load falls on each alike):
`connexion` (Connexion's own final app and Swagger UI middleware), `dispatch-only`, `current`:

    python -m tests.bench.cpu --variants connexion,dispatch-only,current --requests 3000
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SECRET = "bench-secret-" + "0123456789abcdef" * 4
KINDS = ("get", "list", "create", "update", "complete")
# With `--postgres`: the database the measured app uses (else a throwaway SQLite file).
DATABASE_URL = "BENCH_DATABASE_URL"


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


class _Target:
    """One app on its own SQLite database, a user with 60 tasks, and the request kinds."""

    def __init__(self, app: Any) -> None:
        from service.tokens import TokenVerifier

        self.app = app
        user = "bench-user"
        token = TokenVerifier(SECRET).mint(user, 3600)
        self.auth = [(b"authorization", f"Bearer {token}".encode()), (b"host", b"127.0.0.1")]
        self.base = f"/api/{user}/tasks"
        self.actions: dict[str, tuple[str, str, str, bytes, int]] = {}

    async def request(self, method: str, path: str, query: str, body: bytes, expect: int) -> bytes:
        headers = self.auth
        if body:
            length = str(len(body)).encode()
            headers = [
                *headers,
                (b"content-type", b"application/json"),
                (b"content-length", length),
            ]
        status, payload = await _call(self.app, _scope(method, path, query, headers), body)
        assert status == expect, (method, path, status, payload[:300])
        return payload

    async def seed(self) -> None:
        create = b'{"title": "seed"}'
        first = json.loads(await self.request("POST", self.base, "", create, 201))["id"]
        for _ in range(59):
            await self.request("POST", self.base, "", create, 201)
        one = f"{self.base}/{first}"
        self.actions = {
            "get": ("GET", one, "", b"", 200),
            "list": ("GET", self.base, "status=pending&limit=50", b"", 200),
            "create": ("POST", self.base, "", b'{"title": "Buy milk"}', 201),
            "update": ("PUT", one, "", b'{"title": "Renamed", "priority": "high"}', 200),
            "complete": ("PATCH", f"{one}/complete", "", b"", 200),
        }

    async def run(self, kind: str, times: int) -> None:
        method, path, query, body, expect = self.actions[kind]
        for _ in range(times):
            await self.request(method, path, query, body, expect)


def _app(variant: str = "current") -> Any:
    """The app of the code on sys.path; a variant swaps pieces back to Connexion's own."""
    from connexion import AsyncApp
    from connexion.middleware.swagger_ui import SwaggerUIMiddleware

    from db.migrate import upgrade
    from service import app as composition
    from service import patches
    from service.settings import Settings

    url = os.environ.get(DATABASE_URL) or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    upgrade(url)
    saved = getattr(composition, "ContractApp"), getattr(patches, "SwaggerUIOnItsPaths")  # noqa: B009
    if variant in ("connexion", "dispatch-only"):
        setattr(patches, "SwaggerUIOnItsPaths", SwaggerUIMiddleware)  # noqa: B010
    if variant == "connexion":
        setattr(composition, "ContractApp", AsyncApp)  # noqa: B010
    try:
        return composition.create_app(
            Settings(database_url=url, better_auth_secret=SECRET, _env_file=None)
        )
    finally:
        setattr(composition, "ContractApp", saved[0])  # noqa: B010
        setattr(patches, "SwaggerUIOnItsPaths", saved[1])  # noqa: B010


async def _measure(requests: int, kinds: list[str], warmup: int = 200) -> dict[str, float]:
    target = _Target(_app())
    await target.seed()
    figures = {}
    for kind in kinds:
        await target.run(kind, warmup)
        start = time.process_time()
        await target.run(kind, requests)
        figures[kind] = (time.process_time() - start) * 1000 / requests
    return figures


async def _variants(variants: list[str], requests: int, kinds: list[str]) -> None:
    """The variants in one process, in alternating batches of 25 requests: whatever else
    the machine does falls on all of them alike."""
    targets = {variant: _Target(_app(variant)) for variant in variants}
    cpu = {(variant, kind): 0.0 for variant in variants for kind in kinds}
    for target in targets.values():
        await target.seed()
        for kind in kinds:
            await target.run(kind, 100)
    for _ in range(requests // 25):
        for kind in kinds:
            for variant, target in targets.items():
                start = time.process_time()
                await target.run(kind, 25)
                cpu[variant, kind] += time.process_time() - start
    print(f"{'kind':<10}" + "".join(f"{v:>16}" for v in variants) + "   ratio last/first")
    for kind in [*kinds, "mean"]:
        if kind == "mean":
            row = [sum(cpu[v, k] for k in kinds) / len(kinds) for v in variants]
        else:
            row = [cpu[v, kind] for v in variants]
        per_request = [seconds * 1000 / (requests // 25 * 25) for seconds in row]
        cells = "".join(f"{ms:>13.3f} ms" for ms in per_request)
        print(f"{kind:<10}{cells}{per_request[-1] / per_request[0]:>10.2f}")


def _one_run(source: Path, requests: int, kinds: list[str], url: str) -> dict[str, float]:
    """The measurement in a fresh interpreter importing `source`'s code."""
    env = {**os.environ, "PYTHONPATH": str(source), "LOG_LEVEL": "warning", DATABASE_URL: url}
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
    parser.add_argument(
        "--variants",
        help="compare in one process: connexion,dispatch-only,current (this checkout only)",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="measure on a throwaway PostgreSQL (the driver's work counts too) instead of SQLite",
    )
    args = parser.parse_args()
    with _databases(args.postgres, len(args.source or [ROOT])) as urls:
        _compare(args, urls)


@contextmanager
def _databases(postgres: bool, count: int) -> Iterator[list[str]]:
    """A database for each checkout measured: on one throwaway PostgreSQL, or "" each (every
    app makes its own SQLite file)."""
    if not postgres:
        yield [""] * count
        return
    from tests.support.postgres import PostgresServer

    server = PostgresServer()
    try:
        server.start()
        yield [server.create_database(f"bench_{n}") for n in range(count)]
    finally:
        server.destroy()


def _compare(args: argparse.Namespace, urls: list[str]) -> None:
    if args.variants:
        os.environ[DATABASE_URL] = urls[0]
        kinds = args.kinds.split(",")
        asyncio.run(_variants(args.variants.split(","), args.requests, kinds))
        return
    sources = [s.resolve() for s in (args.source or [ROOT])]
    database = dict(zip(sources, urls, strict=True))
    kinds = args.kinds.split(",")
    results: dict[Path, list[dict[str, float]]] = {s: [] for s in sources}
    for round_ in range(args.rounds):
        for source in sources:  # alternating A B A B
            figures = _one_run(source, args.requests, kinds, database[source])
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
