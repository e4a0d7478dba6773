"""Under a bounded load through HAProxy: instances restarted one after another, PgBouncer
restarted, PostgreSQL restarted, PostgreSQL down behind PgBouncer. Nothing acknowledged may
be lost, and every failure is a prompt 503 with Retry-After (none at all for instances)."""

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from service.tokens import TokenVerifier
from tests.support import load
from tests.support.api import SECRET
from tests.support.cluster import INSTANCE_ENV, Cluster, MixedWorker

pytestmark = pytest.mark.cluster

THREADS = 8
WARM_UP_SECONDS = 2.0
OUTAGE_SECONDS = 3.0
LONG_OUTAGE_SECONDS = 15.0
RECOVERY_LIMIT_SECONDS = 5.0
# The service's own bound on a request's wait for the database (docs/decisions/0004): a
# free connection, a connection or ping, the statement and the deadline's margin.
DATABASE_WAIT_BOUND = (
    float(INSTANCE_ENV["DB_POOL_TIMEOUT"])
    + float(INSTANCE_ENV["DB_CONNECT_TIMEOUT"])
    + float(INSTANCE_ENV["DB_STATEMENT_TIMEOUT"])
    + 1.0
)
SCHEDULING_SLACK_SECONDS = 1.0  # HAProxy, the event loop and a busy two-core host


@pytest.fixture
def workers(cluster: Cluster) -> Iterator[list[MixedWorker]]:
    stop = threading.Event()
    verifier = TokenVerifier(SECRET)
    crew = [MixedWorker(cluster.url, verifier, stop) for _ in range(THREADS)]
    yield crew
    stop.set()
    load.join(crew)


def finish(workers: list[MixedWorker]) -> list[load.Outcome]:
    workers[0].stop.set()
    load.join(workers)
    return list(load.all_outcomes(workers))


def wait_for_success_after(workers: list[MixedWorker], moment: float) -> float:
    """When the first request sent after `moment` succeeded."""
    limit = moment + 30
    while time.monotonic() < limit:
        done = [
            o.finished
            for o in load.all_outcomes(workers)
            if o.started >= moment and o.status in (200, 201)
        ]
        if done:
            return min(done)
        time.sleep(0.05)
    raise AssertionError("no request succeeded after the restart")


def report(
    capsys: pytest.CaptureFixture[str], name: str, outcomes: list[load.Outcome], **figures: Any
) -> None:
    statuses = Counter(o.status for o in outcomes)
    span = max(o.finished for o in outcomes) - min(o.started for o in outcomes)
    slowest = max(o.finished - o.started for o in outcomes)
    line = (
        f"\n[cluster: {name}] requests={len(outcomes)} rate={len(outcomes) / span:.0f}/s "
        f"2xx={sum(n for s, n in statuses.items() if s and s < 300)} 503={statuses[503]} "
        f"connection_errors={statuses[None]} "
        f"other={sum(n for s, n in statuses.items() if s and s >= 300 and s != 503)} "
        f"slowest={slowest:.2f}s " + " ".join(f"{key}={value}" for key, value in figures.items())
    )
    with capsys.disabled():
        print(line)


def assert_nothing_lost(engine: Engine, workers: list[MixedWorker]) -> int:
    for worker in workers:
        load.assert_database_matches(engine, worker)
    return sum(len(worker.acknowledged) for worker in workers)


def test_rolling_restart_fails_no_request_and_loses_nothing(
    cluster: Cluster,
    workers: list[MixedWorker],
    direct_engine: Engine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    load.start(workers)
    time.sleep(WARM_UP_SECONDS)
    out_of_rotation = [cluster.restart_instance(n) for n in range(len(cluster.instances))]
    time.sleep(WARM_UP_SECONDS)
    outcomes = finish(workers)

    acknowledged = assert_nothing_lost(direct_engine, workers)
    report(
        capsys,
        "rolling restart",
        outcomes,
        acknowledged_writes_checked=acknowledged,
        restarts="/".join(f"{seconds:.1f}s" for seconds in out_of_rotation),
    )
    statuses = Counter(o.status for o in outcomes)

    errors = [(o.operation, o.error) for o in outcomes if o.status is None]
    assert set(statuses) <= {200, 201}, (statuses, errors)


def outage(
    workers: list[MixedWorker], stop: Callable[[], None], start: Callable[[], None], seconds: float
) -> tuple[float, float, float]:
    """Stop a component for `seconds` under load; (stopped, restarting, back) times."""
    stop()
    stopped = time.monotonic()
    time.sleep(seconds)
    restarting = time.monotonic()
    start()
    return stopped, restarting, time.monotonic()


def test_pooler_then_database_restart_answer_503_and_recover(
    cluster: Cluster,
    workers: list[MixedWorker],
    direct_engine: Engine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    load.start(workers)
    time.sleep(WARM_UP_SECONDS)
    figures: dict[str, Any] = {}
    windows = []
    for name, stop, start in (
        ("pgbouncer", cluster.pgbouncer.stop, _start_pgbouncer(cluster)),
        ("postgresql", lambda: cluster.postgres.stop("fast"), cluster.postgres.start),
    ):
        stopped, restarting, back = outage(workers, stop, start, OUTAGE_SECONDS)
        recovered = wait_for_success_after(workers, back)
        windows.append((stopped, restarting))
        figures[f"{name}_recovery"] = f"{recovered - back:.2f}s"
        figures[f"{name}_503s"] = sum(
            1
            for o in load.all_outcomes(workers)
            if o.status == 503 and stopped <= o.started <= recovered
        )
        assert recovered - back <= RECOVERY_LIMIT_SECONDS, figures
        time.sleep(WARM_UP_SECONDS)
    outcomes = finish(workers)

    acknowledged = assert_nothing_lost(direct_engine, workers)
    missing_retry_after = sum(worker.without_retry_after for worker in workers)
    report(
        capsys,
        "pgbouncer and postgresql restarts",
        outcomes,
        acknowledged_writes_checked=acknowledged,
        **figures,
    )
    statuses = Counter(o.status for o in outcomes)
    assert set(statuses) <= {200, 201, 503}, statuses
    assert missing_retry_after == 0
    for stopped, restarting in windows:
        during = {
            o.status for o in outcomes if o.started >= stopped + 0.5 and o.finished <= restarting
        }
        assert during == {503}, during


def _start_pgbouncer(cluster: Cluster) -> Callable[[], None]:
    def start() -> None:
        cluster.pgbouncer.start()
        cluster.pgbouncer.wait_until_listening()

    return start


def test_database_down_behind_the_pooler_is_answered_within_the_services_bound(
    cluster: Cluster,
    workers: list[MixedWorker],
    direct_engine: Engine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    load.start(workers)
    time.sleep(WARM_UP_SECONDS)
    stopped, restarting, back = outage(
        workers, lambda: cluster.postgres.stop("fast"), cluster.postgres.start, LONG_OUTAGE_SECONDS
    )
    recovered = wait_for_success_after(workers, back)
    time.sleep(WARM_UP_SECONDS)
    outcomes = finish(workers)

    acknowledged = assert_nothing_lost(direct_engine, workers)
    # Every request the outage touched: in flight when PostgreSQL stopped, or sent during it.
    during = [o for o in outcomes if o.finished >= stopped and o.started <= restarting]
    slowest = max(o.finished - o.started for o in during)
    report(
        capsys,
        "postgresql down 15 s behind pgbouncer",
        outcomes,
        acknowledged_writes_checked=acknowledged,
        requests_during=len(during),
        slowest_during=f"{slowest:.2f}s",
        bound=f"{DATABASE_WAIT_BOUND:g}s",
        recovery=f"{recovered - back:.2f}s",
    )
    statuses = Counter(o.status for o in outcomes)
    assert set(statuses) <= {200, 201, 503}, statuses
    assert {o.status for o in during if o.started >= stopped and o.finished <= restarting} == {503}
    assert slowest <= DATABASE_WAIT_BOUND + SCHEDULING_SLACK_SECONDS
    assert sum(worker.without_retry_after for worker in workers) == 0
    assert recovered - back <= RECOVERY_LIMIT_SECONDS
    assert httpx.get(f"{cluster.url}/ready").status_code == 200
