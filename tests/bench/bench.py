"""`make bench`: load the API with wrk against a throwaway PostgreSQL and print figures.

The server is pinned to CPU 0, PostgreSQL and wrk to CPU 1. Every measured run starts
from the same seeded rows (a template database), so modes and rounds compare fairly.
Figures: req/s, latency percentiles, non-2xx count (any makes the run INVALID),
server and PostgreSQL CPU milliseconds per request, and the server's RSS afterwards.
"""

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from service.tokens import TokenVerifier
from tests.bench.profile import summarise
from tests.support.postgres import PostgresServer, free_port

ROOT = Path(__file__).resolve().parents[2]
WORKLOAD = Path(__file__).with_name("workload.lua")
SECRET = "bench-secret-" + "0123456789abcdef" * 4
MODES = ("mixed", "list", "get", "create", "update", "complete", "sync")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    mode: str
    requests: int
    seconds: float
    rps: float
    latency_ms: dict[str, float]
    non_2xx: int
    socket_errors: int
    server_cpu_ms_per_request: float
    postgres_cpu_ms_per_request: float
    server_rss_mib: float
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.non_2xx == 0 and self.socket_errors == 0 and self.requests > 0


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # a process that ended during the run
        # utime + stime, plus cutime + cstime: the CPU of children that ended and were
        # reaped (a PostgreSQL backend that closed during the run).
        total += sum(int(value) for value in fields[11:15])
    return total


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def rss_mib(pids: list[int]) -> float:
    total_kib = 0
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        total_kib += int(match.group(1)) if match else 0
    return total_kib / 1024


class Bench:
    def __init__(
        self,
        workers: int,
        duration: int,
        server_cpus: str,
        load_cpus: str,
        profile: Path | None,
        source: Path = ROOT,
        bare: bool = False,
    ) -> None:
        self.profile = profile
        self.source = source
        self.bare = bare
        self.workers = workers
        self.duration = duration
        self.server_cpus = server_cpus
        self.load_cpus = load_cpus
        self.connections = 32
        self.postgres = PostgresServer(cpus=load_cpus)
        # auto_explain logs the plans of exactly the statements the API sends (scale run).
        self.postgres.start("-c shared_preload_libraries=auto_explain")
        self.folder = Path(tempfile.mkdtemp(prefix="tasks-bench-"))

    def close(self) -> None:
        self.postgres.destroy()

    def postmaster_pid(self) -> int:
        return int(self.postgres.pid_file().read_text().splitlines()[0])

    def sql(self, statement: str, database: str = "postgres") -> None:
        # CREATE/DROP DATABASE and VACUUM cannot run inside a transaction.
        engine = create_engine(self.postgres.url(database), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(statement))
        finally:
            engine.dispose()

    def reset_from(self, template: str) -> str:
        self.sql("DROP DATABASE IF EXISTS bench WITH (FORCE)")
        self.sql(f"CREATE DATABASE bench TEMPLATE {template}")
        return self.postgres.url("bench")

    @contextmanager
    def server(self, database_url: str) -> Iterator[tuple[int, int]]:
        port = free_port()
        command = self.todo_api("serve", "--port", str(port), "--workers", str(self.workers))
        if self.bare:
            command = [
                str(ROOT / ".venv/bin/uvicorn"),
                "tests.bench.bare.app:create_app",
                "--factory",
                "--port",
                str(port),
                "--http",
                "httptools",
                "--log-level",
                "warning",
            ]
        if self.profile:
            command = [
                str(ROOT / ".venv/bin/py-spy"),
                "record",
                "--rate",
                "250",
                "--format",
                "raw",
                "--subprocesses",
                "--output",
                str(self.profile),
                "--",
                *command,
            ]
        if self.server_cpus:
            command = ["taskset", "-c", self.server_cpus, *command]
        log = (self.folder / f"server-{port}.log").open("w")
        process = subprocess.Popen(
            command, cwd=self.folder, env=self.env(database_url), stdout=log, stderr=log
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}", time.monotonic() + 60)
            yield process.pid, port
        finally:
            # py-spy writes its profile when interrupted; uvicorn stops on either signal.
            process.send_signal(signal.SIGINT if self.profile else signal.SIGTERM)
            process.wait(timeout=60)
            log.close()

    def todo_api(self, *args: str) -> list[str]:
        # A checkout from before the service package had its command in `handlers`.
        package = "service" if (self.source / "service" / "cli.py").exists() else "handlers"
        return [str(ROOT / ".venv/bin/python"), "-m", f"{package}.cli", *args]

    def env(self, database_url: str) -> dict[str, str]:
        """The server's environment: production defaults, the code under `self.source`."""
        return {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(self.source),
            "DATABASE_URL": database_url,
            "BETTER_AUTH_SECRET": SECRET,
        }

    def migrate(self, database_url: str) -> None:
        subprocess.run(
            self.todo_api("migrate"),
            cwd=self.folder,
            env=self.env(database_url),
            check=True,
            capture_output=True,
        )

    def seed(self, users: int, tasks_per_user: int) -> dict[str, list[int]]:
        """Create the rows through the API, then keep them as the template `bench_seed`."""
        url = self.reset_from("template0")
        self.migrate(url)
        owned: dict[str, list[int]] = {}
        with (
            self.server(url) as (_, port),
            httpx.Client(base_url=f"http://127.0.0.1:{port}") as client,
        ):
            jobs = [(f"bench-user-{u:03d}", n) for u in range(users) for n in range(tasks_per_user)]
            with ThreadPoolExecutor(max_workers=8) as pool:
                for user_id, task_id in pool.map(lambda job: create_seed_task(client, *job), jobs):
                    owned.setdefault(user_id, []).append(task_id)
        self.sql("VACUUM ANALYZE", "bench")
        self.sql("DROP DATABASE IF EXISTS bench_seed")
        self.sql("CREATE DATABASE bench_seed TEMPLATE bench")
        return owned

    def measure_bare(self) -> list[Run]:
        """The framework alone: authenticated GETs answered from memory."""
        data = self.write_data({f"bare-user-{u:03d}": list(range(1, 201)) for u in range(50)})
        with self.server("") as (pid, port):
            return [self.measure_on(pid, port, "get", data)]

    def write_data(self, owned: dict[str, list[int]]) -> Path:
        verifier = TokenVerifier(SECRET)
        lines = ["return { users = {"]
        for user_id, task_ids in sorted(owned.items()):
            token = verifier.mint(user_id, 24 * 3600)
            ids = ",".join(str(i) for i in task_ids)
            lines.append(f'  {{ id = "{user_id}", token = "{token}", tasks = {{ {ids} }} }},')
        lines.append("} }")
        path = self.folder / "data.lua"
        path.write_text("\n".join(lines))
        return path

    def measure(self, mode: str, template: str, data: Path, list_query: str | None = None) -> Run:
        with self.server(self.reset_from(template)) as (pid, port):
            return self.measure_on(pid, port, mode, data, list_query)

    def measure_on(
        self, pid: int, port: int, mode: str, data: Path, list_query: str | None = None
    ) -> Run:
        env = {**os.environ, "BENCH_DATA": str(data), "BENCH_MODE": mode}
        if list_query:
            env["BENCH_LIST_QUERY"] = list_query
        self.wrk(port, env, seconds=3)  # warm-up: caches, pool, first-request imports
        server_pids = process_tree(pid)
        postgres_pids = process_tree(self.postmaster_pid())
        server_before, postgres_before = cpu_ticks(server_pids), cpu_ticks(postgres_pids)
        output = self.wrk(port, env, seconds=self.duration)
        server_cpu = cpu_ticks(server_pids) - server_before
        postgres_cpu = cpu_ticks(process_tree(self.postmaster_pid())) - postgres_before
        rss = rss_mib(process_tree(pid))
        run = parse_wrk(mode, output, server_cpu, postgres_cpu, rss)
        if list_query:
            run.extra["query"] = list_query
        return run

    def wrk(self, port: int, env: dict[str, str], seconds: int) -> str:
        command = [
            "wrk",
            "-t1",
            f"-c{self.connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(WORKLOAD),
            f"http://127.0.0.1:{port}",
        ]
        if self.load_cpus:
            command = ["taskset", "-c", self.load_cpus, *command]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout


def wait_ready(base: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            # The bare calibration app has no /ready: its 404 says it is serving.
            if httpx.get(f"{base}/ready", timeout=2).status_code in (200, 404):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{base} did not become ready")


def create_seed_task(client: httpx.Client, user_id: str, number: int) -> tuple[str, int]:
    rng = random.Random(f"{user_id}/{number}")  # deterministic content
    body: dict[str, object] = {
        "title": f"Task {number} of {user_id}",
        "priority": rng.choice(["low", "medium", "high"]),
        "completed": rng.random() < 0.3,
    }
    if rng.random() < 0.5:
        body["due_date"] = f"2027-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if rng.random() < 0.5:
        body["description"] = f"Details for task {number}"
    token = TokenVerifier(SECRET).mint(user_id, 3600)
    response = client.post(
        f"/api/{user_id}/tasks", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    response.raise_for_status()
    return user_id, int(response.json()["id"])


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(mode: str, output: str, server_ticks: int, postgres_ticks: int, rss: float) -> Run:
    requests = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", output).group(1))  # type: ignore[union-attr]
    seconds_match = re.search(r"requests in ([\d.]+)(m?s)", output)
    seconds = float(seconds_match.group(1)) if seconds_match else 0.0
    if seconds_match and seconds_match.group(2) == "ms":
        seconds /= 1000
    latency = {
        percentile: float(value) * UNITS[unit]
        for percentile, value, unit in re.findall(
            r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M
        )
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    per_request = 1000 / TICKS / max(requests, 1)
    return Run(
        mode=mode,
        requests=requests,
        seconds=seconds,
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        latency_ms={f"p{k}": round(v, 2) for k, v in latency.items()},
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
        server_cpu_ms_per_request=round(server_ticks * per_request, 3),
        postgres_cpu_ms_per_request=round(postgres_ticks * per_request, 3),
        server_rss_mib=round(rss, 1),
    )


def print_table(runs: list[Run]) -> None:
    header = (
        f"{'mode':<44}{'req/s':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'non-2xx':>9}"
        f"{'srv ms/req':>12}{'pg ms/req':>11}{'RSS MiB':>9}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        label = run.mode + (f" {run.extra['query']}" if "query" in run.extra else "")
        latency = run.latency_ms
        print(
            f"{label:<44}{run.rps:>8.0f}{latency.get('p50', 0):>9.2f}{latency.get('p90', 0):>9.2f}"
            f"{latency.get('p99', 0):>9.2f}{run.non_2xx:>9}{run.server_cpu_ms_per_request:>12.3f}"
            f"{run.postgres_cpu_ms_per_request:>11.3f}{run.server_rss_mib:>9.1f}"
            + ("" if run.valid else "   INVALID: non-2xx or socket errors")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modes", default=",".join(MODES), help=f"comma-separated: {', '.join(MODES)}"
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured run")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--tasks-per-user", type=int, default=200)
    parser.add_argument("--server-cpus", default="0", help="taskset list for the server ('' = any)")
    parser.add_argument("--load-cpus", default="1", help="taskset list for PostgreSQL and wrk")
    parser.add_argument("--out", type=Path, default=ROOT / "tests/artifacts/bench.json")
    parser.add_argument(
        "--profile", type=Path, help="record the measured runs with py-spy into this file"
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=ROOT,
        help="serve the code of this folder (e.g. a worktree of an earlier commit)",
    )
    parser.add_argument(
        "--bare", action="store_true", help="calibrate: a bare Connexion app, no database"
    )
    args = parser.parse_args()

    bench = Bench(
        args.workers,
        args.duration,
        args.server_cpus,
        args.load_cpus,
        args.profile,
        args.source,
        args.bare,
    )
    try:
        runs = bench.measure_bare() if args.bare else seed_and_measure(bench, args)
    finally:
        bench.close()
    report(runs, args)


def seed_and_measure(bench: Bench, args: argparse.Namespace) -> list[Run]:
    started = time.monotonic()
    owned = bench.seed(args.users, args.tasks_per_user)
    print(f"seeded {sum(map(len, owned.values()))} tasks in {time.monotonic() - started:.0f} s")
    data = bench.write_data(owned)
    return [bench.measure(mode, "bench_seed", data) for mode in args.modes.split(",")]


def report(runs: list[Run], args: argparse.Namespace) -> None:
    print_table(runs)
    if args.profile:
        print(summarise(args.profile))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([asdict(run) for run in runs], indent=2))
    print(f"figures written to {args.out}")
    sys.exit(0 if all(run.valid for run in runs) else 1)


if __name__ == "__main__":
    main()
