"""RQ jobs carried out inside Strom's processes by RQ's own worker machinery, on threads, without forking.

Each slot thread of `strom worker` (and the scheduler's notifier) owns one `JobRunner`: an RQ
`SimpleWorker` registered under its own name, so `rq info`, RQ's registries and job statuses say
what Strom is doing. A runner does not take jobs itself: its owner takes a job from the queues
(and, for a step, claims the attempt), then `run(job, queue)` executes it as RQ does — an execution
in the queue's started registry, the job's function called, the job finished or failed in RQ's
registries. The job's function reaches the object that runs it (a Strom worker, a notifier) with
`current_host()`; a step's function also takes the writing of the job's start (`take_start()`) and sends
it with its own first write, the step's start report, so RQ costs that path no round trip. The owner's
heartbeat loop keeps the runner and its execution alive
(`stage_heartbeat`); an execution that is no longer beaten expires from the started registry,
which is how a dead process's step is told apart from a slow one (runner/service/sweeps.py).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from rq.executions import Execution, ExecutionRegistry
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.timeouts import BaseDeathPenalty
from rq.utils import now as rq_now
from rq.worker import SimpleWorker, WorkerStatus

if TYPE_CHECKING:
    from redis import Redis
    from rq import Queue

__all__ = ["JobRunner", "current_host", "take_start"]

_here = threading.local()
_log = logging.getLogger("strom.rq")
_log.setLevel(logging.WARNING)  # Strom logs each step itself; RQ's per-job lines would only repeat it


class _OwnTimeouts(BaseDeathPenalty):
    """No death penalty: steps end by their own timeouts (the engine's deadlines, the executors), and RQ's
    SIGALRM penalty works only on a process's main thread."""

    def setup_death_penalty(self) -> None:
        pass

    def cancel_death_penalty(self) -> None:
        pass


def take_start() -> Callable[[Any], None] | None:
    """What records the start of the job running on this thread, for the caller to write along with its own
    first write (once; None when already written or no job runs here)."""
    runner: JobRunner | None = getattr(_here, "runner", None)
    if runner is None:
        return None
    stage, runner.pending_start = runner.pending_start, None
    return stage


def current_host() -> Any:
    """The object the job running on this thread works with (set by `JobRunner.run`)."""
    host = getattr(_here, "host", None)
    if host is None:
        raise RuntimeError(
            "Strom's RQ jobs are carried out by `strom worker` and `strom scheduler`, not by a plain `rq worker`"
        )
    return host


class JobRunner(SimpleWorker):
    death_penalty_class = _OwnTimeouts

    def __init__(
        self, name: str, queues: list[Queue], connection: Redis, host: Any, ttl: float, defer_start: bool = False
    ):
        """`ttl`: seconds an execution (and the runner) stays alive without a heartbeat. `defer_start`: the job's
        function writes the job's start itself, with its own first write (`take_start`), saving a round trip."""
        self.ttl = max(1, math.ceil(ttl))
        super().__init__(
            queues,
            name=name,
            connection=connection,
            serializer=JSONSerializer,
            worker_ttl=self.ttl,
            prepare_for_work=False,  # no CLIENT SETNAME on a connection pool other threads share
            log_job_description=False,
        )
        self.hostname, self.pid, self.ip_address = socket.gethostname(), os.getpid(), "unknown"
        self.log = _log
        self.host = host
        self.registered = False  # in RQ's worker registry
        self.defer_start = defer_start
        self.current: tuple[Job, Execution] | None = None
        self.pending_start: Callable[[Any], None] | None = None

    def _set_connection(self, connection: Redis) -> Redis:
        return connection  # RQ would raise the shared pool's socket timeout to several minutes for its BLPOP

    def procline(self, message: str) -> None:
        pass  # one process runs many of these: its title stays Strom's

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return self.ttl

    # ----------------------------------------------------------------- life
    def born(self) -> None:
        """Register in RQ's worker registry, once (replacing what a killed process of the same name left)."""
        if self.registered:
            return
        self.connection.delete(self.key, self.executions_key)
        self.register_birth()  # type: ignore[no-untyped-call]
        with self.connection.pipeline() as pipe:
            self.set_state(WorkerStatus.IDLE, pipeline=pipe)
            self.heartbeat(self.ttl, pipeline=pipe)  # gone from RQ's registry `ttl` after this process dies
            pipe.execute()
        self.registered = True  # only now: an outage on the way means trying again

    def died(self) -> None:
        if self.registered:
            self.register_death()  # type: ignore[no-untyped-call]

    # ----------------------------------------------------------------- one job
    def run(self, job: Job, queue: Queue) -> None:
        """Execute `job` as an RQ worker does: started, performed, then finished or failed in RQ's registries."""
        _here.host, _here.runner = self.host, self
        try:
            self.execute_job(job, queue)
        finally:
            _here.host = _here.runner = None
            self.current = self.pending_start = None

    def execute_job(self, job: Job, queue: Queue) -> None:
        """RQ's SimpleWorker.execute_job, its start and its finish each one round trip to Redis, or none for the
        start when the job's function takes it (a step's start latency is Strom's figure of merit); a failure
        goes through RQ's own handling."""
        execution = Execution(uuid4().hex, job.id, self.connection, worker_name=self.name)
        self.executions[execution.id] = execution
        self.current = (job, execution)
        self.pending_start = partial(self._stage_start, job, execution)
        if not self.defer_start:
            self._write(self.pending_start)
        try:
            value = job.perform()
        except Exception:  # noqa: BLE001 - as RQ: any failure of the job's function fails the job
            job.ended_at = rq_now()
            # the start if nobody wrote it, else the execution's record put back whole: RQ's failure handling
            # reads it, and after a long outage it may have expired while the job ran
            self._write(self.pending_start or self.stage_heartbeat)
            self._finalize_failure(job, queue, execution, sys.exc_info())
            self.set_state(WorkerStatus.IDLE)
            return
        job.ended_at = rq_now()
        self._write(self.pending_start)  # a function that did not take it: written before its finish
        if job.result_ttl != 0:  # not Strom's: RQ's whole handling (results, dependents, repeats)
            self._finalize_success(job, queue, execution, value)
            self.set_state(WorkerStatus.IDLE)
            return
        with self.connection.pipeline(transaction=False) as pipe:  # handle_job_success for a job keeping no result
            self.increment_successful_job_count(pipeline=pipe)
            self.increment_total_working_time(job.ended_at - (job.started_at or job.ended_at), pipe)
            self.cleanup_execution(job, pipe, execution)
            pipe.delete(job.key, job.dependents_key, job.execution_registry.key)
            self.set_state(WorkerStatus.IDLE, pipeline=pipe)
            pipe.execute()

    def _stage_start(self, job: Job, execution: Execution, pipe: Any) -> None:
        """RQ's prepare_execution and prepare_job_execution: the execution in the started registry (and its
        job's and its worker's indexes), the job started by this worker."""
        self.stage_heartbeat(pipe)
        pipe.sadd(execution.worker_executions_key, execution.composite_key)
        pipe.expire(execution.worker_executions_key, self.ttl + 60)
        self.set_state(WorkerStatus.BUSY, pipeline=pipe)
        job.prepare_for_execution(self.name, pipeline=pipe)
        pipe.persist(job.key)

    def _write(self, stage: Callable[[Any], None] | None) -> None:
        self.pending_start = None
        if stage is not None:
            with self.connection.pipeline(transaction=False) as pipe:
                stage(pipe)
                pipe.execute()

    def stage_heartbeat(self, pipe: Any) -> None:
        """Keep the runner and its execution alive for `ttl` (inside the owner's heartbeat pipeline). An
        execution that expired or that a registry cleanup took meanwhile (after an outage) is put back whole:
        its job still runs."""
        self.heartbeat(self.ttl, pipeline=pipe)
        current = self.current
        if current is None:
            return
        job, execution = current
        execution.last_heartbeat = at = rq_now()
        execution.save(ttl=self.ttl, pipeline=pipe)  # whole: after a long outage its record may have expired
        job.started_job_registry.add_execution(execution, pipeline=pipe, ttl=self.ttl)
        ExecutionRegistry(job_id=job.id, connection=pipe).add(execution=execution, ttl=self.ttl, pipeline=pipe)
        job.heartbeat(at, self.ttl, pipeline=pipe, xx=True)

    def tidy(self) -> None:
        """RQ's periodic registry cleanup (one runner per process is enough; RQ locks it per queue)."""
        if self.should_run_maintenance_tasks:
            self.clean_registries()  # type: ignore[no-untyped-call]
