"""`make bench-scale`: does a user's page stay fast as the table grows?

1. One user with 200 tasks while the table holds 10^4, then 10^6 rows of other users:
   list p50/p99 of a single client (no queueing, so the figures are service times), for the
   pending page, a `tag` filter and a `due_from`/`due_to` range.
2. One user who owns 10,000 tasks: each status filter, each sort key and the filters.
3. The PostgreSQL plans (EXPLAIN ANALYZE, logged by auto_explain) of those list queries.
"""

import argparse
import json
import re
import time
from dataclasses import asdict
from pathlib import Path

import httpx

from service.tokens import TokenVerifier
from tests.bench.bench import ROOT, SECRET, Bench, Run, print_table

TARGET, HEAVY = "scale-user", "heavy-user"
INSERT = """
INSERT INTO tasks (user_id, title, description, completed, priority, due_date,
                   completed_at, created_at, updated_at, version, change_position)
SELECT {owner}, 'Task ' || g, CASE WHEN g % 2 = 0 THEN 'Details of task ' || g END,
       g % 10 < 3, (ARRAY['low', 'medium', 'high'])[1 + g % 3],
       CASE WHEN g % 2 = 1 THEN DATE '2027-01-01' + (g % 365) END,
       CASE WHEN g % 10 < 3 THEN now() END,
       now() - make_interval(secs => g), now() - make_interval(secs => g / 2), 1, g
FROM generate_series({start}, {stop}) AS g
"""
# Each owner's feed counter continues after the positions the rows above took.
SYNC_STATE = """
INSERT INTO sync_state (user_id, last_position, purged_position)
SELECT user_id, max(change_position), 0 FROM tasks GROUP BY user_id
ON CONFLICT (user_id) DO UPDATE SET last_position = EXCLUDED.last_position
"""
# Every task gets tags: "work" on even ids, "home" on multiples of 3, "urgent" on multiples of 5.
TAG = """
INSERT INTO task_tags (task_id, user_id, name, position)
SELECT tasks.id, tasks.user_id, tag.name, tag.position
FROM tasks, (VALUES ('work', 0, 2), ('home', 1, 3), ('urgent', 2, 5)) AS tag(name, position, every)
WHERE tasks.id > (SELECT coalesce(max(task_id), 0) FROM task_tags) AND tasks.id % tag.every = 0
"""
FILTERS = [
    "tag=work&limit=50",
    "tag=work&tag=home&limit=50",
    "due_from=2027-02-01&due_to=2027-03-31&limit=50",
]
GROWTH = ["status=pending&limit=50", FILTERS[0], FILTERS[2]]
QUERIES = [
    "status=all&limit=50",
    "status=pending&limit=50",
    "status=completed&limit=50",
    *(f"sort={key}&limit=50" for key in ("title", "due_date", "priority", "updated")),
    "sort=due_date&order=desc&limit=50",
    *FILTERS,
    "due_from=2027-02-01&due_to=2027-03-31&sort=due_date&limit=50",
    "tag=work&status=pending&sort=due_date&limit=50",
]


def add_rows(bench: Bench, owner: str, start: int, stop: int) -> None:
    bench.sql(INSERT.format(owner=owner, start=start, stop=stop), "bench")
    bench.sql(TAG, "bench")
    bench.sql(SYNC_STATE, "bench")
    bench.sql("VACUUM ANALYZE tasks", "bench")
    bench.sql("VACUUM ANALYZE task_tags", "bench")


def data_for(bench: Bench, user_id: str) -> Path:
    path = bench.folder / f"{user_id}.lua"
    token = TokenVerifier(SECRET).mint(user_id, 24 * 3600)
    path.write_text(
        f'return {{ users = {{ {{ id = "{user_id}", token = "{token}", tasks = {{ 1 }} }} }} }}'
    )
    return path


def plans(bench: Bench, url: str, user_id: str, queries: list[str]) -> dict[str, str]:
    """One request per query with auto_explain on; the plans come from the server log."""
    bench.sql("ALTER DATABASE bench SET auto_explain.log_min_duration = 0")
    bench.sql("ALTER DATABASE bench SET auto_explain.log_analyze = on")
    token = TokenVerifier(SECRET).mint(user_id, 3600)
    found: dict[str, str] = {}
    try:
        # A server started now opens connections that carry the settings.
        with (
            bench.server(url) as (_, port),
            httpx.Client(base_url=f"http://127.0.0.1:{port}") as client,
        ):
            for query in queries:
                offset = bench.postgres.log.stat().st_size
                client.get(
                    f"/api/{user_id}/tasks?{query}", headers={"Authorization": f"Bearer {token}"}
                ).raise_for_status()
                time.sleep(0.3)
                with bench.postgres.log.open() as log:
                    log.seek(offset)
                    found[query] = latest_plan(log.read())
    finally:
        bench.sql("ALTER DATABASE bench RESET ALL")
    return found


def latest_plan(log: str) -> str:
    entries = re.split(r"\n(?=\S.*LOG:)", log)
    lists = [e for e in entries if "Query Text:" in e and "LIMIT" in e]
    return lists[-1].split("Query Text:", 1)[1].strip() if lists else "(no plan logged)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per measured run")
    parser.add_argument("--out", type=Path, default=ROOT / "tests/artifacts/bench-scale.json")
    args = parser.parse_args()

    bench = Bench(1, args.duration, "0", "1", None)
    bench.connections = 1
    runs: list[Run] = []
    found: dict[str, str] = {}
    try:
        url = bench.reset_from("template0")
        bench.migrate(url)
        add_rows(bench, f"'{TARGET}'", 1, 200)
        add_rows(bench, "'other-' || (g % 20000)", 1, 10_000)
        target = data_for(bench, TARGET)
        for label, rows_to in (("10^4 rows", None), ("10^6 rows", 1_000_000)):
            if rows_to:
                add_rows(bench, "'other-' || (g % 20000)", 10_001, rows_to)
            with bench.server(url) as (pid, port):
                for query in GROWTH:
                    run = bench.measure_on(pid, port, "list", target, query)
                    run.extra["query"] = f"{label}: {query.replace('&limit=50', '')}"
                    runs.append(run)
        add_rows(bench, f"'{HEAVY}'", 1, 10_000)
        heavy = data_for(bench, HEAVY)
        with bench.server(url) as (pid, port):
            for query in QUERIES:
                run = bench.measure_on(pid, port, "list", heavy, query)
                run.extra["query"] = f"10k tasks: {query.replace('&limit=50', '')}"
                runs.append(run)
        found = plans(bench, url, HEAVY, QUERIES)
    finally:
        bench.close()
    print_table(runs)
    for query, plan in found.items():
        print(f"\n--- {HEAVY}: {query}\n{plan}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": [asdict(r) for r in runs], "plans": found}, indent=2))
    print(f"\nfigures and plans written to {args.out}")


if __name__ == "__main__":
    main()
