"""`strom worker`: take steps from the RQ queues of this worker's abilities and tags, and run them as RQ jobs.

A worker runs up to `concurrency` steps at once, one slot thread each, in one process; each slot is an
RQ worker of its own (runner/store/rqrunner.py), so RQ's registries and `rq info` show what runs
where. Taking a step is a claim: the step's id leaves its queue and the worker marks the attempt as
its own (SET NX), so two workers never run one attempt even if a sweep handed it back meanwhile;
a sweep hands back an attempt whose taker died before its start was recorded. The claimed step
then runs as its RQ job: an execution in the queue's started registry, kept alive by this worker's
heartbeat until Redis has the step's end, so an attempt is declared lost only when its worker is
gone. Log lines and reports go through the outbox, which keeps them until Redis has them, and an
end still owed after the job (the worker stopping during an outage) is kept alive by the heartbeat
of whichever worker holds it. Every thread is a supervised loop (runner/service/supervision.py).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .. import failpoints
from ..engine.events import StepAbandoned, StepAsked, StepFinished, StepStarted
from ..engine.status import StepStatus
from ..engine.work import StepWork
from ..errors import StromError
from ..executors.base import Executor, execute, executor_key
from ..executors.local import LocalExecutor, LocalSettings
from ..executors.outfiles import remove_staging
from ..executors.process import STEP_GROUPS
from ..executors.sandbox import open_to_steps
from ..executors.unavailable import Unavailable
from ..masking import Masker
from ..store import keys
from ..store.connection import is_outage
from ..store.queues import BLOCK_SECONDS, SERVER_ABILITY, dequeue, rq_queue, worker_queues
from ..store.rqrunner import JobRunner, take_start
from ..store.runs import CLAIM_TTL
from ..store.workers import WorkerInfo, installation_id
from .outbox import Outbox
from .step_artifacts import StepArtifacts
from .step_state import StepState
from .steplog import LogBudget, LogLimits, StepLog
from .supervision import Health, Loop

if TYPE_CHECKING:
    from redis.client import Pipeline, PubSub
    from rq import Queue
    from rq.job import Job

    from ..git.downloads import SnapshotDownloads
    from ..runs.service import Service

__all__ = ["ABILITIES", "Worker", "default_abilities"]

log = logging.getLogger("strom.worker")
ABILITIES = ("script", "docker", "kubernetes", "agent", SERVER_ABILITY)
REAP_EVERY = 30.0  # seconds between passes of the container reaper
TIDY_EVERY = 60.0  # seconds between looks at whether RQ's registries are due a cleanup
OUTBOX_DRAIN = 10.0  # when stopping, how long to try delivering what is still owed to Redis


def default_abilities(config) -> list[str]:
    """What a worker offers unless told: scripts, and agent steps when the configuration has providers."""
    return ["script", "agent"] if config.agent_providers else ["script"]


class _Running:
    def __init__(self, work: StepWork):
        self.work = work
        self.cancel = threading.Event()
        self.shutdown = False


class _Slot:
    """One slot: take a step, claim it, run it as an RQ job. A step taken, not yet claimed, is kept across an outage."""

    def __init__(self, worker: Worker, index: int):
        self.worker = worker
        self.runner = JobRunner(
            f"{worker.name}.{index}",
            worker.queues,
            worker.service.rq_redis,
            worker,
            worker.config.lost_after,
            defer_start=True,
        )
        self.held: tuple[Job, Queue] | None = None

    def one_pass(self) -> float | None:
        worker = self.worker
        self.runner.born()
        if self.held is None:
            if worker.stopping.is_set():
                return 0.2  # draining: take nothing new
            self.held = dequeue(worker.queues, worker.service.rq_redis)
            if self.held is None:
                return None
        job, queue = self.held
        failpoints.hit("worker-after-take")
        try:
            if worker.stopping.is_set():  # taken while stopping: hand it back, first in line
                worker.service.rq_redis.lpush(queue.key, job.id)
                self.held = None
                return None
            cancelled = worker.claim(StepWork.from_dict(job.args[0]))
        except Exception as exc:
            if not is_outage(exc):  # a job that cannot be read or claimed: not kept (the sweep hands it back)
                self.held = None
            raise
        self.held = None
        if cancelled is False:  # None: not ours to run; True: its run moved on while it waited, the attempt is over
            failpoints.hit("worker-after-claim")
            self.runner.run(job, queue)
        return None


class Worker:
    def __init__(
        self,
        service: Service,
        abilities: Collection[str] = ("script",),
        tags: Collection[str] = (),
        exclusive: bool = False,
        concurrency: int = 1,
        name: str | None = None,
        executors: dict[str, Executor] | None = None,
        health: Health | None = None,
    ):
        self.service = service
        self.config = service.config
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.queue_names = worker_queues(abilities, tags, exclusive)
        self.queues = [rq_queue(n, service.rq_redis) for n in self.queue_names]
        self.info = WorkerInfo(
            self.name,
            tuple(abilities),
            tuple(sorted(set(tags))),
            tuple(self.queue_names),
            concurrency,
            socket.gethostname(),
            os.getpid(),
            time.time(),
        )
        self.concurrency = max(1, concurrency)
        self.owns_health = health is None
        self.health = health or Health(f"worker {self.name}")
        hide = (Path(self.config.data_dir),) + tuple(self.config.sensitive_paths)
        local = LocalExecutor(LocalSettings(sandbox=self.config.sandbox, hide=hide, limits=self.config.step_limits))
        self.executors = executors or {"local": local, "none": Unavailable()}
        if SERVER_ABILITY in abilities and "http" not in self.executors:
            from ..executors.destinations import Destinations
            from ..executors.http import HttpExecutor

            self.executors["http"] = HttpExecutor(Destinations(self.config.http_allow))
        if SERVER_ABILITY in abilities and "notify" not in self.executors and self.config.notifications.channels:
            from ..executors.notify import NotifyExecutor

            self.executors["notify"] = NotifyExecutor(service)
        if "agent" in abilities and "agent" not in self.executors and self.config.agent_providers:
            from .agent_tools import agent_executor

            local_executor = self.executors.get("local")
            self.executors["agent"] = agent_executor(
                service, local_executor if isinstance(local_executor, LocalExecutor) else None
            )
        installation = functools.cache(lambda: installation_id(service.redis))  # asked when first needed
        if "docker" in abilities and "docker" not in self.executors:
            from ..executors.docker import DockerExecutor

            self.executors["docker"] = DockerExecutor(
                self.config.docker, self.name, hide=hide, installation=installation
            )
        if "kubernetes" in abilities and "kubernetes" not in self.executors:
            from ..executors.kubernetes import PodExecutor
            from .pod_files import PodFileAccess

            self.executors["kubernetes"] = PodExecutor(
                self.config.kubernetes,
                self.name,
                self._snapshot_access,
                files=PodFileAccess(service),
                installation=installation,
            )
        self.outbox = Outbox(service.redis, service.logs, Path(self.config.data_dir) / "spool")
        self.step_state = StepState(service)
        self.step_artifacts = StepArtifacts(service)
        self.limits = LogLimits.of(self.config)
        self.log_budget = LogBudget(service.redis, self.limits.run)
        self.running: dict[str, _Running] = {}
        self._downloads: SnapshotDownloads | None = None
        self._reaped = False
        self.lock = threading.Lock()
        self.stopping = threading.Event()  # no new steps
        self.stopped = threading.Event()  # the loops end
        self.threads: list[threading.Thread] = []
        self.slots = [_Slot(self, i) for i in range(self.concurrency)]

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        STEP_GROUPS.watch()
        open_to_steps(Path(self.config.data_dir))
        check = getattr(self.executors.get("local"), "problem", None)  # the sandbox's shortcomings (LocalExecutor)
        problem = check() if check is not None else None
        if problem:
            log.warning(
                "steps here run without the full sandbox (%s): untrusted pull requests' steps are refused, "
                "and trusted steps run with less isolation",
                problem,
            )
        self.outbox.load_spool(self.name)
        loops = [
            ("heartbeat", self._beat_once),
            ("cancels", self._Cancels(self).one_pass),
            ("outbox", self.outbox.one_pass),
        ]
        if "docker" in self.executors:
            loops.append(("reaper", self._reap_once))
        loops.append(("registries", self._tidy_once))
        loops += [(f"slot-{i}", slot.one_pass) for i, slot in enumerate(self.slots)]
        for name, one_pass in loops:
            label = name if self.owns_health else f"server-{name}"
            self.threads.append(Loop(self.health, label, one_pass, self.stopped).start())
        log.info("worker %s listening on %s", self.name, ", ".join(self.queue_names))

    def stop(self, drain: float | None = None) -> None:
        """Stop taking steps; give running steps `drain` seconds (workers.shutdown_grace), then stop them and
        hand them back: they run again elsewhere, not counted as a try."""
        self.request_stop()
        self.wait(drain)

    def request_stop(self) -> None:
        if not self.stopping.is_set():
            log.info(
                "worker %s stopping: takes no new steps, gives %d running ones %.0f s",
                self.name,
                len(self.running),
                self.config.shutdown_grace,
            )
        self.stopping.set()

    def wait(self, drain: float | None = None) -> None:
        end = time.monotonic() + (self.config.shutdown_grace if drain is None else drain)
        while self.running and time.monotonic() < end:
            time.sleep(0.05)
        with self.lock:
            for running in self.running.values():
                running.shutdown = True
                running.cancel.set()
        end = time.monotonic() + 15
        while self.running and time.monotonic() < end:
            time.sleep(0.05)
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=5)
        self.outbox.drain(OUTBOX_DRAIN)
        try:
            for slot in self.slots:
                slot.runner.died()
            self.service.workers.leave(self.name)
        except Exception as exc:  # noqa: BLE001 - Redis may be away; the registries forget us by themselves
            log.warning("could not leave the worker registries: %s", exc)

    # ----------------------------------------------------------------- heartbeats and cancels
    def beat(self) -> None:
        """Keep this worker, its RQ runners and their executions alive; mark the attempts whose end is not in
        Redis yet as owed; set the cancel of a running step whose cancel this worker did not hear."""
        with self.lock:
            running = {keys.step_key(r.work.job_id, r.work.step, r.work.attempt): r for r in self.running.values()}
        owed = [(j, s, a) for j, s, a in self.outbox.pending_attempts() if keys.step_key(j, s, a) not in running]
        cancelled = self.service.workers.beat(
            self.info,
            owed,
            self.health.snapshot() if self.owns_health else None,
            check_cancel=list(running),
            also=self._stage_runners,
        )
        for key in cancelled:  # a cancel published while this worker could not hear it
            running[key].cancel.set()

    def _stage_runners(self, pipe: Pipeline) -> None:
        for slot in self.slots:
            if slot.runner.registered:
                slot.runner.stage_heartbeat(pipe)

    def _beat_once(self) -> float:
        self.beat()
        return self.config.heartbeat_interval

    class _Cancels:
        """Listens for cancels of the steps this worker runs."""

        def __init__(self, worker: Worker):
            self.worker = worker
            self.pubsub: PubSub | None = None

        def one_pass(self) -> None:
            if self.worker.stopped.is_set():
                return
            try:
                if self.pubsub is None:
                    self.pubsub = self.worker.service.redis.pubsub(ignore_subscribe_messages=True)
                    self.pubsub.subscribe(keys.CANCEL_CHANNEL)
                message = self.pubsub.get_message(timeout=BLOCK_SECONDS)
            except Exception:
                self.pubsub, pubsub = None, self.pubsub
                if pubsub is not None:
                    pubsub.close()
                raise
            if message and message.get("type") == "message":
                with self.worker.lock:
                    running = self.worker.running.get(message["data"])
                if running is not None:
                    running.cancel.set()

    def _tidy_once(self) -> float:
        if self.slots[0].runner.registered:
            self.slots[0].runner.tidy()
        return TIDY_EVERY

    def _reap_once(self) -> float:
        self.reap(starting=not self._reaped)  # the first time: also what this worker's name left behind
        self._reaped = True
        return REAP_EVERY

    def reap(self, starting: bool = False) -> list[str]:
        """Remove containers that dead workers left behind (at start: this worker's name's too)."""
        from ..executors.docker import DockerExecutor, reap

        executor = self.executors.get("docker")
        if not isinstance(executor, DockerExecutor):
            return []

        alive = lambda name: bool(self.service.redis.exists(keys.worker_alive(name)))  # noqa: E731
        removed = reap(
            executor.client, alive, also=(self.name,) if starting else (), installation=executor.installation()
        )
        if removed:
            log.warning("removed %d container(s) left behind by stopped workers: %s", len(removed), ", ".join(removed))
        return removed

    # ----------------------------------------------------------------- one step
    def claim(self, work: StepWork) -> bool | None:
        """Make the attempt this worker's: whether it was cancelled meanwhile, or None if it is not ours to run
        (another worker's, or over). Safe to repeat after an outage cut the answer off."""
        redis = self.service.redis
        claim = keys.claim(work.job_id, work.step, work.attempt)
        with redis.pipeline(transaction=True) as pipe:
            pipe.set(claim, self.name, nx=True, ex=CLAIM_TTL)
            pipe.get(claim)
            pipe.exists(keys.cancel_flag(work.job_id, work.step, work.attempt))
            _, owner, cancelled = pipe.execute()
        if owner != self.name:
            log.info(
                "attempt %d of %s/%s is not this worker's to run (its claim: %s); dropped",
                work.attempt,
                work.job_id,
                work.step,
                owner,
            )
            return None
        return bool(cancelled)

    def run_claimed(self, work: StepWork) -> None:
        """Run a claimed attempt (the function of its RQ job) and wait until Redis has its end, or this worker
        stops (then the end is spooled, and owed by this worker's heartbeat or its successor's)."""
        self.run_work(work)
        self.outbox.wait_reported((work.job_id, work.step, work.attempt), self.stopped)

    def run_work(self, work: StepWork) -> None:
        key = keys.step_key(work.job_id, work.step, work.attempt)
        running = _Running(work)
        with self.lock:
            self.running[key] = running
        try:
            # the start of the attempt's RQ job goes in the same transaction (runner/store/rqrunner.py)
            self.outbox.report(work.job_id, StepStarted(work.step, work.attempt, worker=self.name), also=take_start())
            logs = StepLog(
                self.outbox,
                work.job_id,
                work.step,
                work.attempt,
                self.limits,
                self.log_budget.for_run(keys.log_bytes(work.job_id)),
            )
            finished = self._execute(work, logs, running)
            logs.close()
            if running.shutdown and getattr(finished, "status", None) is StepStatus.CANCELLED:
                log.warning(
                    "handed back attempt %d of %s/%s: it was still running when the shutdown grace ended",
                    work.attempt,
                    work.job_id,
                    work.step,
                )
                self.outbox.report(
                    work.job_id,
                    StepAbandoned(
                        work.step,
                        work.attempt,
                        f"worker {self.name} shut down during the step and handed it back",
                        handed_back=True,
                    ),
                )
            else:
                self.outbox.report(work.job_id, finished)
        finally:
            with self.lock:
                self.running.pop(key, None)

    def _execute(self, work: StepWork, logs: StepLog, running: _Running) -> StepFinished | StepAsked:
        """The report of running `work` here, with the task state and artifacts it left stored; a failure of
        Strom's is a failed step. An agent step that asks a question ends its attempt asking it."""
        try:
            work = self._with_api(work, logs)
            with self.step_state.prepared(work, running.cancel) as work:
                result = execute(self._executor_for(work), work, self._workspace(work), logs, running.cancel)
                try:
                    state = self.step_state.kept(work, result)
                    artifacts = self.step_artifacts.stored(work, result, logs)
                finally:
                    remove_staging(result.artifacts_dir)
        except StromError as exc:
            return StepFinished(work.step, work.attempt, StepStatus.FAILED, error=str(exc))
        except Exception as exc:
            log.exception("step %s/%s failed inside the worker", work.job_id, work.step)
            error = Masker(work.mask).mask(f"the worker failed: {type(exc).__name__}: {exc}")
            return StepFinished(work.step, work.attempt, StepStatus.FAILED, error=error)
        r = result
        if r.status is StepStatus.WAITING:
            return StepAsked(work.step, work.attempt, str((r.output or {}).get("question") or ""))
        return StepFinished(
            work.step, work.attempt, r.status, r.output, r.error, r.exit_code, r.summary, state, artifacts
        )

    def _workspace(self, work: StepWork) -> Path:
        """Where the step's files are: the snapshot on this machine's disk, else downloaded from the server."""
        if not work.snapshot or (work.kind == "agent" and not _stdio_servers(work)):  # a prompt reads no files
            return Path(".")
        path = Path(work.snapshot)
        if path.is_dir() or not work.commit or path.name != work.commit:
            return path
        if self._downloads is None:
            from ..git.downloads import SnapshotDownloads

            self._downloads = SnapshotDownloads(
                Path(self.config.data_dir) / "snapshots", self._server_url, self.config.worker_token
            )
        return self._downloads.get(work.workspace, work.commit)

    def _snapshot_access(self, work: StepWork) -> tuple[str, str]:
        """Where a pod downloads the step's commit, and a token that opens only that, for a while."""
        from ..errors import StepSetupError
        from ..git import snapshot_tokens
        from .pod_files import pod_base_url

        commit = work.commit
        if not commit:  # the pod executor asks only for a step with its run's commit
            raise StepSetupError("runner: pod needs the run's commit from a git workspace")
        try:
            base, secret = pod_base_url(self.config)
        except ValueError as exc:
            raise StepSetupError(f"runner: pod: {exc}") from None
        url = f"{base}/api/workspaces/{work.workspace}/snapshots/{commit}.tar.gz"
        ttl = max(snapshot_tokens.TTL, self.config.kubernetes.pending_timeout + 300)  # valid until the pod starts
        return url, snapshot_tokens.issue(secret, work.workspace, commit, ttl=ttl)

    def _with_api(self, work: StepWork, logs: StepLog) -> StepWork:
        """A step of a task with `api: true` gets the API's URL and its run's token (masked in its logs); never a
        step of an untrusted pull request."""
        if not work.api:
            return work
        if work.untrusted:
            logs.line("strom", "api: true gives no token to a step of an untrusted pull request")
            return work
        token = self.service.run_tokens.issue(work.job_id)
        env = {**work.env, "STROM_URL": self._server_url, "STROM_TOKEN": token}
        return replace(work, env=env, mask=(*work.mask, token))

    @property
    def _server_url(self) -> str:
        return self.config.worker_server_url or self.config.public_url

    def _executor_for(self, work: StepWork):
        return self.executors.get(executor_key(work), self.executors["none"])


def _stdio_servers(work: StepWork) -> bool:
    """Whether an agent step starts MCP servers over stdio (they see the workspace, as a script step does)."""
    payload = work.payload
    servers = getattr(payload, "mcp_servers", None) or {}
    return any(spec.get("command") for spec in servers.values())
