from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from tests.support.api import Api


class TestConcurrency:
    def test_20_concurrent_toggles_are_all_applied(self, api: Api) -> None:
        task = api.create()
        path = f"/{task['id']}/complete"

        with ThreadPoolExecutor(max_workers=20) as pool:
            responses = list(pool.map(lambda _: api.request("PATCH", path), range(20)))

        assert [r.status_code for r in responses] == [200] * 20
        # Twenty serialized flips answer "done" and "open" ten times each; a lost
        # update would show as one state answered twice in a row.
        assert Counter(r.json()["completed"] for r in responses) == {True: 10, False: 10}
        final = api.get(task["id"]).json()
        assert final["completed"] is False
        assert final["completed_at"] is None

    def test_50_concurrent_creates_give_50_distinct_tasks(self, api: Api) -> None:
        def create(number: int) -> int:
            task_id: int = api.create(title=f"task {number}")["id"]
            return task_id

        with ThreadPoolExecutor(max_workers=50) as pool:
            created = list(pool.map(create, range(50)))

        assert len(set(created)) == 50
        listed = api.list(limit=500)
        assert listed.headers["x-total-count"] == "50"
        assert sorted(task["id"] for task in listed.json()) == sorted(created)
        assert {task["title"] for task in listed.json()} == {f"task {n}" for n in range(50)}

    def test_20_concurrent_completions_of_a_recurring_task_create_one_occurrence(
        self, api: Api
    ) -> None:
        task = api.create(due_date="2026-12-01", recurrence="FREQ=DAILY")
        path = f"/{task['id']}/complete"

        with ThreadPoolExecutor(max_workers=20) as pool:
            responses = list(
                pool.map(lambda _: api.request("PATCH", path, json={"completed": True}), range(20))
            )

        assert [r.status_code for r in responses] == [200] * 20
        occurrences = {r.json()["next_occurrence_id"] for r in responses}
        assert len(occurrences) == 1
        assert None not in occurrences
        listed = api.list(limit=500)
        assert listed.headers["x-total-count"] == "2"

    def test_20_concurrent_tag_renames_and_edits_keep_tags_whole(self, api: Api) -> None:
        tasks = [api.create(tags=["old", f"t{n}"]) for n in range(10)]

        def work(n: int) -> int:
            if n % 2:
                return api.tags("PUT", "/old", json={"name": "new"}).status_code
            task_id = tasks[n // 2]["id"]
            return api.request("PUT", f"/{task_id}", json={"tags": ["old", "x"]}).status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(work, range(20)))

        assert set(statuses) <= {200, 404}
        for task in api.all():
            assert len(task["tags"]) == 2
            assert len(set(task["tags"])) == 2
