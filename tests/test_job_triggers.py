"""`job` triggers chain runs (and stop a loop), and unused commit snapshots are collected."""

from __future__ import annotations

import os
import time

from service_env import make_config, stack, wait_for

from runner import runs
from runner.engine import RunStatus
from runner.gitops.chains import MAX_CHAIN
from runner.service.scheduler import Scheduler
from runner.store import RunFilter

CHAIN = {
    ".strom/chain.yaml": """
    tasks:
      build:
        input: { fail: { type: boolean, default: false } }
        flow:
          s: { type: script, script: '{% if input.fail %}exit 3{% else %}echo "OUTPUT: {\\"artifact\\": \\"app.tar\\"}"{% endif %}' }
      publish:
        input: { artifact: { type: string } }
        flow: { s: { type: script, script: 'echo "publishing {{ input.artifact }}"' } }
      alert:
        flow:
          s:
            type: script
            script: 'echo "{{ event.job.task }} {{ event.job.status }}: $ERROR"'
            env: { ERROR: "{{ event.job.error }}" }
      ping:
        flow: { s: { type: script, script: "true" } }
      pong:
        flow: { s: { type: script, script: "true" } }
    triggers:
      publish-after-build: { type: job, task: publish, after: [build], input: { artifact: "{{ event.job.output.artifact }}" } }
      alert-on-failure: { type: job, task: alert, after: [build, publish], statuses: [failed, timed_out] }
      ping-pong: { type: job, task: pong, after: [ping] }
      pong-ping: { type: job, task: ping, after: [pong] }
    """
}


def runs_of(service, task):
    return service.runs.list(RunFilter(task=task)).runs


def settled(service, task, count):
    return wait_for(
        lambda: len(found := [s for s in runs_of(service, task) if s.status.terminal]) == count and found,
        what=f"{count} finished {task} run(s)",
    )


def test_job_triggers_start_on_the_statuses_they_name_with_the_upstream_run_in_event(service_workspace, redis_url):
    config = make_config(service_workspace(CHAIN), redis_url)
    with stack(config) as service:
        ok = runs.execute(service, "local", "build", {})
        [published] = settled(service, "publish", 1)
        assert published.inputs == {"artifact": "app.tar"} and published.status is RunStatus.SUCCEEDED
        assert (published.source, published.trigger, published.event["job"]["id"]) == (
            "job",
            "publish-after-build",
            ok.id,
        )
        failed = runs.execute(service, "local", "build", {"fail": True})
        [alert] = settled(service, "alert", 1)
        assert alert.event["job"]["id"] == failed.id
        lines = [line.text for line in service.logs.read(alert.id)]
        assert lines == ["build failed: step s failed: exit code 3"]
        assert len(runs_of(service, "publish")) == 1, "publish follows succeeded builds only"


def test_a_loop_of_job_triggers_stops(service_workspace, redis_url):
    config = make_config(service_workspace(CHAIN), redis_url)
    with stack(config) as service:
        runs.execute(service, "local", "ping", {})
        wait_for(
            lambda: (
                len(runs_of(service, "ping")) + len(runs_of(service, "pong")) == MAX_CHAIN + 1
                and all(s.status.terminal for s in runs_of(service, "ping") + runs_of(service, "pong"))
            ),
            what="the chain to end",
        )
        deepest = max(s.event.get("chain", 0) for s in runs_of(service, "ping") + runs_of(service, "pong"))
        assert deepest == MAX_CHAIN


def test_unused_snapshots_are_collected_and_used_ones_kept(service_workspace, redis_url, tmp_path):
    config = make_config(
        service_workspace(CHAIN), redis_url, STROM_DATA_DIR=str(tmp_path / "data"), STROM_RETENTION__SNAPSHOTS="1h"
    )
    with stack(config, workers=0, scheduler=False) as service:
        root = tmp_path / "data" / "snapshots"
        for sha in ("a" * 40, "b" * 40, "c" * 40):
            service.repos.snapshots.ensure(sha, lambda target: (target.mkdir(), (target / "f").write_text("x")))
        old = time.time() - 7200
        for sha in ("a" * 40, "b" * 40):
            os.utime(root / f"{sha}.used", (old, old))
        state = runs.execute(service, "local", "ping", {})
        service.redis.set(
            f"strom:job:{state.id}",
            service.redis.get(f"strom:job:{state.id}").replace(str(service_workspace(CHAIN)), str(root / ("a" * 40))),
        )
        removed = Scheduler(service).retention.collect_snapshots()
        assert removed == ["b" * 40]
        assert sorted(p.name for p in root.iterdir()) == ["a" * 40, f"{'a' * 40}.used", "c" * 40, f"{'c' * 40}.used"]
