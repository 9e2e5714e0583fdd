"""Runs in a real Redis: atomic transitions under concurrency, listing and filtering, retention."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace

import pytest
from service_env import make_config

from runner import runs
from runner.engine import RunStatus, StepFinished, StepStarted, StepStatus
from runner.runs.service import Service
from runner.service.scheduler import Scheduler
from runner.store import RunFilter, keys
from runner.store.queues import queue_name
from runner.store.runs import SCAN_BUDGET

FAN_IN = {
    ".strom/t.yaml": """
    tasks:
      fan-in:
        flow:
          a: { type: script, script: "true" }
          b: { type: script, script: "true" }
          c: { type: script, script: "true", depends_on: [a, b] }
      other:
        flow:
          x: { type: script, script: "true" }
    """
}


@pytest.fixture
def service(service_workspace, redis_url):
    return Service(make_config(service_workspace(FAN_IN), redis_url))


def _queue_ids(service, name):
    return [raw.decode() for raw in service.rq_redis.lrange(f"rq:queue:{name}", 0, -1)]


def test_sibling_steps_finishing_at_the_same_instant_promote_the_join_exactly_once(service):
    for _ in range(30):
        state = runs.execute(service, "local", "fan-in", {})
        for step in ("a", "b"):
            service.orchestrator.apply(state.id, StepStarted(step, 1))
        barrier = threading.Barrier(2)
        errors = []

        def finish(step):
            barrier.wait()
            try:
                Service(service.config).orchestrator.apply(state.id, StepFinished(step, 1, StepStatus.SUCCEEDED))
            except Exception as exc:  # noqa: BLE001 - pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=finish, args=(s,)) for s in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        final = service.runs.load(state.id)
        assert {n: r.status for n, r in final.steps.items()} == {
            "a": StepStatus.SUCCEEDED,
            "b": StepStatus.SUCCEEDED,
            "c": StepStatus.QUEUED,
        }
        queued_c = [i for i in _queue_ids(service, queue_name("script")) if i.startswith(f"s-{state.id}-1-")]
        assert len(queued_c) == 3, "a, b and exactly one c were enqueued"


def test_a_run_and_its_first_steps_are_written_in_one_transaction(service):
    state = runs.execute(service, "local", "fan-in", {})
    stored = service.runs.load(state.id)
    assert stored == state and stored.status is RunStatus.QUEUED
    assert stored.definitions and stored.snapshot == str(service.config.workspaces["local"].folder)
    queued = service.redis.hgetall(keys.QUEUED)
    assert sorted(json.loads(v)["queue"] for k, v in queued.items() if k.startswith(state.id)) == [
        "strom-script",
        "strom-script",
    ]
    assert service.redis.sismember(keys.ACTIVE, state.id)


def test_listing_filters_newest_first_and_pages(service):
    ids = []
    for i in range(7):
        task = "fan-in" if i % 2 == 0 else "other"
        ids.append((runs.execute(service, "local", task, {}).id, task))
        time.sleep(0.002)
    failed = ids[1][0]
    service.orchestrator.apply(failed, StepFinished("x", 1, StepStatus.FAILED, error="boom"))
    everything = service.runs.list(RunFilter(), limit=50).runs
    assert [s.id for s in everything] == [i for i, _ in reversed(ids)]
    others = service.runs.list(RunFilter(workspace="local", task="other")).runs
    assert [s.id for s in others] == [i for i, t in reversed(ids) if t == "other"]
    assert [s.id for s in service.runs.list(RunFilter(status="failed")).runs] == [failed]
    page1 = service.runs.list(RunFilter(), limit=3)
    page2 = service.runs.list(RunFilter(), limit=3, before=page1.next_before)
    page3 = service.runs.list(RunFilter(), limit=3, before=page2.next_before)
    assert [s.id for s in page1.runs + page2.runs + page3.runs] == [i for i, _ in reversed(ids)]
    assert page3.next_before is None
    middle = everything[3].created_at
    since = service.runs.list(RunFilter(since=middle)).runs
    assert [s.id for s in since] == [s.id for s in everything[:4]]
    until = service.runs.list(RunFilter(until=middle)).runs
    assert [s.id for s in until] == [s.id for s in everything[3:]]


def test_retention_removes_old_and_excess_finished_runs_and_their_logs(service_workspace, redis_url):
    service = Service(
        make_config(service_workspace(FAN_IN), redis_url, STROM_RETENTION__MAX_RUNS="3", STROM_RETENTION__MAX_AGE="1h")
    )
    done = []
    for _ in range(5):
        state = runs.execute(service, "local", "other", {})
        service.logs.append(state.id, [("x", 1, "stdout", "hello", time.time())])
        service.orchestrator.apply(state.id, StepFinished("x", 1, StepStatus.SUCCEEDED))
        done.append(state.id)
    active = runs.execute(service, "local", "other", {}).id
    old = runs.execute(service, "local", "other", {})
    service.orchestrator.apply(old.id, StepFinished("x", 1, StepStatus.SUCCEEDED))
    stored = service.runs.load(old.id)
    service.redis.set(keys.job(old.id), json.dumps(replace(stored, created_at=time.time() - 7200).to_dict()))
    service.redis.zadd(keys.runs_by("workspace", "local"), {old.id: time.time() - 7200})
    removed = Scheduler(service).retention.enforce(time.time())
    assert removed == 4
    left = {s.id for s in service.runs.list(RunFilter(workspace="local"), limit=50).runs}
    assert left == {active, done[3], done[4]}, "the oldest beyond 3 and the one older than an hour went"
    assert not service.redis.exists(keys.log(done[0])) and not service.runs.exists(old.id)
    assert service.runs.exists(active), "unfinished runs are never removed"


def test_source_and_branch_filters_use_indexes_and_a_rare_match_costs_bounded_pages(service):
    base = runs.execute(service, "local", "other", {})
    bulk = [
        replace(base, id=f"bulk{i:05d}", created_at=1000.0 + i, source=("cron", "api")[i % 2], git={"branch": b})
        for i, b in enumerate(("main", "dev") * SCAN_BUDGET)
    ]
    rare = replace(base, id="rare", created_at=999.0, source="cron", git={"branch": "dev"})  # the oldest of all
    with service.redis.pipeline() as pipe:
        for state in [*bulk, rare]:
            service.runs.stage(pipe, None, state, 0)
        pipe.execute()
    assert [s.id for s in service.runs.list(RunFilter(source="cron", branch="main"), limit=3).runs] == [
        "bulk03998",
        "bulk03996",
        "bulk03994",
    ]
    pages, found, before = 0, [], None
    while True:  # cron and dev runs are many, cron runs of dev only one: each page looks at a bounded number
        page = service.runs.list(RunFilter(source="cron", branch="dev"), before=before)
        pages, found, before = pages + 1, found + [s.id for s in page.runs], page.next_before
        if before is None:
            break
    assert found == ["rare"] and pages == 2, "the first page stops after SCAN_BUDGET runs and says where to go on"

    for kind, value in (("source", "cron"), ("source", "api"), ("branch", "dev"), ("branch", "main")):
        service.redis.delete(keys.runs_by(kind, value))
    latest = service.redis.hgetall(keys.latest_runs("local"))
    assert latest["branch:dev\x1fother"] == "rare", "the run made last is the latest of its row"
    latest["branch:dev\x1fother"] = "bulk03999"  # a rebuild goes by creation time
    service.redis.delete(keys.RUN_INDEXES, keys.latest_runs("local"))  # runs stored before these indexes existed
    assert service.runs.list(RunFilter(source="cron", branch="dev")).runs == []
    assert service.runs.index_filters() == len(bulk) + 2 and service.runs.index_filters() == 0
    assert service.redis.hgetall(keys.latest_runs("local")) == latest, "the overview's rows are rebuilt too"
    assert [s.id for s in service.runs.list(RunFilter(branch="dev", source="cron"), before=1000.5).runs] == ["rare"]
    service.runs.delete([rare])
    assert not any(service.redis.zscore(keys.runs_by(k, v), "rare") for k, v in (("source", "cron"), ("branch", "dev")))
