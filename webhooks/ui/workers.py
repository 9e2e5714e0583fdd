"""The workers page: live workers (abilities, tags, concurrency, the steps they run, their last heartbeat and
loops), the step queues with their depth and oldest waiting step, the schedulers, and the workers lost in the
last day."""

from __future__ import annotations

import time
from datetime import datetime

from flask import render_template
from rq import Queue

from runner.store import RunFilter
from runner.store.queues import describe_queue, rq_queue

from ..access.session import page
from ..context import current_service
from . import bp

ACTIVE_SCAN = 200  # unfinished runs read to find what each worker runs


def _queues(service, names: set[str], live) -> list[dict]:
    out = []
    now = time.time()
    for name in sorted(names):
        queue = rq_queue(name, service.rq_redis)
        depth = queue.count
        oldest = None
        if depth:
            jobs = queue.get_jobs(0, 0)
            enqueued = jobs[0].enqueued_at if jobs else None
            if isinstance(enqueued, datetime):
                oldest = max(0.0, now - enqueued.timestamp())
        listened = any(name in w.queues for w in live)
        out.append(
            {"name": name, "means": describe_queue(name), "depth": depth, "oldest": oldest, "listened": listened}
        )
    return out


@bp.get("/workers")
@page("read")
def workers():
    service = current_service()
    now = time.time()
    health = {record["name"]: record for record in service.workers.processes(now)}
    live = sorted(service.workers.live(), key=lambda w: w.name)
    running: dict[str, list[dict]] = {}
    for state in service.runs.list(RunFilter(status="running"), limit=ACTIVE_SCAN).runs:
        for step in state.steps.values():
            if step.worker and step.status.value == "running":
                running.setdefault(step.worker, []).append({"run": state.id, "task": state.task, "step": step.name})
    # every queue a worker listens on, and every queue RQ knows (a step may wait where nobody listens)
    known = {queue.name for queue in Queue.all(connection=service.rq_redis) if queue.name.startswith("strom-")}
    queue_names = {name for worker in live for name in worker.queues} | known
    schedulers = [record for record in health.values() if record.get("kind") == "scheduler"]
    return render_template(
        "workers.html",
        workers=[{"info": w, "health": health.get(w.name, {}), "running": running.get(w.name, [])} for w in live],
        queues=_queues(service, queue_names, live),
        schedulers=schedulers,
        lost=service.workers.lost(now),
        now=now,
    )
