"""Several instances, one database, on loopback: PostgreSQL, PgBouncer in transaction mode
in front of it (as Neon's pooled endpoint), `todo-api serve` instances pointed at PgBouncer
and HAProxy balancing them. The one helper the cluster tier and `make cluster` use; it stops
every process it started, whatever happened.

    with Cluster(workdir) as cluster:
        cluster.url             # HAProxy
        cluster.instance_urls   # each instance, bypassing HAProxy
"""

import contextlib
import csv
import io
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from db.migrate import upgrade
from service.tokens import TokenVerifier
from tests.support import load
from tests.support.api import SECRET
from tests.support.postgres import PostgresServer, free_port
from tests.support.server import ServerProcess

INSTANCES = 3
WORKERS = 2
POOLER_POOL_SIZE = 10
# Each worker keeps few connections: 3 instances x 2 workers x 3 = 18 clients of PgBouncer,
# which multiplexes them onto its 10 server connections.
INSTANCE_ENV = {
    "BETTER_AUTH_SECRET": SECRET,
    "DB_POOL_SIZE": "3",
    "DB_MAX_OVERFLOW": "0",
    "DB_POOL_TIMEOUT": "2",
    "DB_CONNECT_TIMEOUT": "2",
    "DB_STATEMENT_TIMEOUT": "3",
    "DB_MIGRATIONS": "check",
    "SHUTDOWN_TIMEOUT": "10",
    # Longer than HAProxy takes to see /ready fail (two checks 500 ms apart, plus a busy host).
    "DRAIN_SECONDS": "3",
    "VALIDATE_RESPONSES": "true",
    "LOG_LEVEL": "info",
}
# HAProxy checks /ready this often and marks an instance down after one failure: an
# instance that stops, or loses its database, leaves the rotation within this.
CHECK_INTERVAL_MS = 500
START_TIMEOUT_SECONDS = 60.0


class Daemon:
    """A foreground daemon in its own process, its output in a log file."""

    def __init__(self, name: str, command: list[str], root: Path, *, as_postgres: bool) -> None:
        self.name = name
        self.command = command
        self.root = root
        self.log_path = root / f"{name}.log"
        self.user = "postgres" if as_postgres and os.geteuid() == 0 else None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self.user,
                start_new_session=True,  # Ctrl-C in `make cluster` reaches only the helper
            )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def find_program(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError(f"{name} is not installed: run `make cluster-tools` (or `make test`).")


class PgBouncer(Daemon):
    """PgBouncer in transaction mode, as Neon's pooled endpoint is."""

    def __init__(self, root: Path, postgres_port: int, database: str) -> None:
        self.port = free_port()
        config = root / "pgbouncer.ini"
        (root / "userlist.txt").write_text('"postgres" ""\n')
        config.write_text(
            "[databases]\n"
            f"{database} = host=127.0.0.1 port={postgres_port} dbname={database}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {root / 'userlist.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {POOLER_POOL_SIZE}\n"
            "max_client_conn = 1000\n"
            # Reconnect to a restarted server within a second (the default waits 15 s):
            # how fast the pooler recovers is its own business, not the service's.
            "server_login_retry = 1\n"
            f"pidfile = {root / 'pgbouncer.pid'}\n"
        )
        if os.geteuid() == 0:
            for path in (root, config, root / "userlist.txt"):
                shutil.chown(path, "postgres", "postgres")
        super().__init__(
            "pgbouncer", [find_program("pgbouncer"), str(config)], root, as_postgres=True
        )

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def wait_until_listening(self) -> None:
        _wait_for_port(self.port, self)


class HAProxy(Daemon):
    """Round-robin over the instances, health-checked on /ready, retrying a refused or
    unanswered connection on another instance. Each instance is also a backup server, used
    only when every instance fails its check (the database is down for all of them): then
    clients get the instances' own 503 with Retry-After, not HAProxy's bare one."""

    def __init__(self, root: Path, instance_ports: list[int]) -> None:
        self.port = free_port()
        self.stats_port = free_port()
        config = root / "haproxy.cfg"
        servers = "".join(
            f"    server i{n} 127.0.0.1:{port} check\n"
            f"    server i{n}-fallback 127.0.0.1:{port} backup\n"
            for n, port in enumerate(instance_ports, 1)
        )
        config.write_text(
            "global\n    maxconn 4000\n    log stdout format raw local0\n"
            # Only failed or retried requests are logged: the evidence when a test fails.
            "defaults\n    mode http\n    log global\n    option httplog\n"
            ""
            "    timeout connect 1s\n    timeout client 60s\n    timeout server 60s\n"
            # Retry only what cannot have reached a handler: a refused connection, or one
            # closed before any answer (an instance going away between accept and read).
            "    retries 3\n    option redispatch 1\n"
            "    retry-on conn-failure empty-response\n"
            ""
            f"frontend api\n    bind 127.0.0.1:{self.port}\n    default_backend instances\n"
            "backend instances\n    balance roundrobin\n    option allbackups\n"
            "    option httpchk GET /ready\n    http-check expect status 200\n"
            # A check may take long on a busy host; two failures in a row mark it down.
            f"    timeout check 3s\n    default-server inter {CHECK_INTERVAL_MS} fall 2 rise 1\n"
            f"{servers}"
            f"frontend stats\n    bind 127.0.0.1:{self.stats_port}\n"
            "    stats enable\n    stats uri /stats\n"
        )
        super().__init__(
            "haproxy", [find_program("haproxy"), "-db", "-f", str(config)], root, as_postgres=False
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def servers_up(self) -> set[str]:
        """The primary servers HAProxy currently routes to."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5).text
        except httpx.TransportError:  # not listening yet
            return set()
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        return {
            row["svname"]
            for row in rows
            if row["pxname"] == "instances"
            and row["svname"].startswith("i")
            and "fallback" not in row["svname"]
            and row["status"] == "UP"
        }


class Cluster:
    def __init__(
        self, workdir: Path, *, instances: int = INSTANCES, env: dict[str, str] | None = None
    ) -> None:
        self.workdir = workdir
        self.root = Path(tempfile.mkdtemp(prefix="tasks-cluster-"))
        self.database = "tasks"
        self.postgres = PostgresServer()
        self.pgbouncer = PgBouncer(self.root, self.postgres.port, self.database)
        instance_env = {
            **INSTANCE_ENV,
            **(env or {}),
            "DATABASE_URL": self.pgbouncer.url(self.database),
        }
        self.instances = []
        for n in range(1, instances + 1):
            folder = workdir / f"instance-{n}"
            folder.mkdir(parents=True, exist_ok=True)
            own = {**instance_env, "METRICS_PORT": str(free_port())}
            self.instances.append(ServerProcess(own, folder, workers=WORKERS))
        self.haproxy = HAProxy(self.root, [i.port for i in self.instances])

    # -- the addresses a test or a person uses
    @property
    def url(self) -> str:
        return self.haproxy.url

    @property
    def instance_urls(self) -> list[str]:
        return [instance.base_url for instance in self.instances]

    @property
    def direct_url(self) -> str:
        """PostgreSQL itself, bypassing PgBouncer: where migrations run."""
        return self.postgres.url(self.database)

    # -- life cycle
    def __enter__(self) -> "Cluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.postgres.start()
        self.postgres.create_database(self.database)
        upgrade(self.direct_url)  # through the direct connection, as on Neon
        self.pgbouncer.start()
        self.pgbouncer.wait_until_listening()
        for instance in self.instances:
            instance.start(wait=False)
        for instance in self.instances:
            wait_until_ready(instance)
        self.haproxy.start()
        self.wait_until_routed(len(self.instances))

    def stop(self) -> None:
        """Every process, the last started first; each stop is attempted whatever failed."""
        steps = [
            self.haproxy.stop,
            self._stop_instances,
            self.pgbouncer.stop,
            self.postgres.destroy,
        ]
        for step in steps:
            with contextlib.suppress(Exception):
                step()
        shutil.rmtree(self.root, ignore_errors=True)

    def _stop_instances(self) -> None:
        """SIGTERM to all at once (each drains), then SIGKILL to whatever is left."""
        running = [i for i in self.instances if i.process and i.process.poll() is None]
        for instance in running:
            instance.terminate()
        for instance in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                instance.wait(timeout=20)
        for instance in self.instances:
            instance.kill()

    def restart_instance(self, index: int) -> float:
        """SIGTERM, wait for the exit, start again, wait until HAProxy routes to it again.
        Returns how long the instance was out of the rotation."""
        instance = self.instances[index]
        started = time.monotonic()
        instance.terminate()
        instance.wait(timeout=30)
        instance.start(wait=False)
        wait_until_ready(instance)
        self.wait_until_routed(len(self.instances))
        return time.monotonic() - started

    def wait_until_routed(self, count: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while len(self.haproxy.servers_up()) < count:
            assert time.monotonic() < deadline, self.haproxy.log()
            time.sleep(0.05)

    def logs(self) -> str:
        parts = [f"--- {d.name}\n{d.log()}" for d in (self.haproxy, self.pgbouncer)]
        parts += [f"--- instance {n}\n{i.log()}" for n, i in enumerate(self.instances, 1)]
        return "\n".join(parts)

    def describe(self) -> str:
        lines = [
            f"HAProxy (the API):  {self.url}",
            f"HAProxy stats:      http://127.0.0.1:{self.haproxy.stats_port}/stats",
            *(
                f"instance {n}:         {i.base_url}  "
                f"(metrics http://127.0.0.1:{i.env['METRICS_PORT']}/metrics)"
                for n, i in enumerate(self.instances, 1)
            ),
            f"PgBouncer:          {self.pgbouncer.url(self.database)}",
            f"PostgreSQL direct:  {self.direct_url}",
            f"logs:               {self.workdir}, {self.root}",
        ]
        return "\n".join(lines)


def wait_until_ready(instance: ServerProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        assert instance.process is not None
        assert instance.process.poll() is None, instance.log()
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{instance.base_url}/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"the instance did not get ready:\n{instance.log()}")


def _wait_for_port(port: int, daemon: Daemon) -> None:
    import socket

    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        assert daemon.process is not None
        assert daemon.process.poll() is None, daemon.log()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise AssertionError(f"{daemon.name} did not listen:\n{daemon.log()}")


def describe_counts(**figures: Any) -> str:
    return " ".join(f"{key}={value}" for key, value in figures.items())


class MixedWorker(load.Worker):
    """The load helper's writer, with reads mixed in, that also records which answers were
    503s carrying Retry-After. A 503 write is uncertain (a statement abandoned at the
    service's deadline may still have run), so it is checked like an unanswered one."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.without_retry_after = 0
        self.last_title = ""

    def step(self, client: httpx.Client) -> None:
        if self.acknowledged and self.random.random() < 0.4:
            if self.random.random() < 0.5:
                self.send(client, "list", "GET", "", params={"limit": 20})
            else:
                self.send(client, "get", "GET", f"/{self.random.choice(list(self.acknowledged))}")
            return
        super().step(client)

    def create(self, client: httpx.Client) -> None:
        before = len(self.outcomes)
        super().create(client)
        if self.outcomes[before:] and self.outcomes[-1].status == 503:
            self.unanswered_titles.add(self.last_title)

    def send(
        self, client: httpx.Client, operation: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        if operation == "create":
            self.last_title = kwargs["json"]["title"]
        response = super().send(client, operation, method, path, **kwargs)
        if response is not None and response.status_code == 503:
            self.without_retry_after += "retry-after" not in response.headers
            if operation in ("update", "toggle"):
                self.uncertain.add(int(path.split("/")[1]))
        return response


def main() -> None:
    """`make cluster`: the topology for manual trials, until Ctrl-C."""
    workdir = Path(tempfile.mkdtemp(prefix="tasks-cluster-run-"))
    print("Starting PostgreSQL, PgBouncer, 3 instances x 2 workers and HAProxy...", flush=True)
    try:
        with Cluster(workdir) as cluster:
            token = TokenVerifier(SECRET).mint("alice", 3600)
            print(
                f"{cluster.describe()}\n\nA token for alice (1 h): {token}\n"
                f"Try: curl -s {cluster.url}/api/alice/tasks -H 'Authorization: Bearer {token}'\n"
                "Ctrl-C stops everything.",
                flush=True,
            )
            # Ctrl-C, or SIGTERM, ends the pause; either way everything is stopped.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
            print("\nStopping...", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("Stopped.")


if __name__ == "__main__":
    main()
