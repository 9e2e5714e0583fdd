"""`strom worker`: take steps from the RQ queues of this worker's abilities and tags, and run them.

A worker runs up to `concurrency` steps at once, one thread each, in one process. It reports
each step's start and end as events, streams its lines to Redis, and beats a heartbeat for itself
and every step it runs, so a worker killed mid-step is noticed by the scheduler within `lost_after`.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit


from ..engine.events import StepFinished, StepStarted
from ..engine.status import StepStatus
from ..engine.work import StepWork
from ..errors import StromError
from ..executors.base import execute, executor_key
from ..executors.local import LocalExecutor, LocalSettings
from ..executors.unavailable import Unavailable
from ..store import keys
from ..store.logs import LogBuffer
from ..store.workers import WorkerInfo
from .queues import SERVER_ABILITY, dequeue, forget, rq_queue, worker_queues

__all__ = ["Worker", "ABILITIES"]

log = logging.getLogger("strom.worker")
ABILITIES = ("script", "docker", "kubernetes", SERVER_ABILITY)
REAP_EVERY = 30.0  # seconds between passes of the container reaper


class _Running:
    def __init__(self, work: StepWork):
        self.work = work
        self.cancel = threading.Event()
        self.shutdown = False


class Worker:
    def __init__(self, service, abilities=("script",), tags=(), exclusive: bool = False, concurrency: int = 1,
                 name: str | None = None, executors: dict | None = None):
        self.service = service
        self.config = service.config
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.queue_names = worker_queues(abilities, tags, exclusive)
        self.queues = [rq_queue(n, service.rq_redis) for n in self.queue_names]
        self.info = WorkerInfo(self.name, tuple(abilities), tuple(sorted(set(tags))), tuple(self.queue_names),
                               concurrency, socket.gethostname(), os.getpid(), time.time())
        self.concurrency = max(1, concurrency)
        hide = (Path(self.config.data_dir),) + tuple(self.config.sensitive_paths)
        local = LocalExecutor(LocalSettings(sandbox=self.config.sandbox, hide=hide))
        self.executors = executors or {"local": local, "none": Unavailable()}
        if SERVER_ABILITY in abilities and "http" not in self.executors:
            from ..executors.http import HttpExecutor
            self.executors["http"] = HttpExecutor()
        if SERVER_ABILITY in abilities and "notify" not in self.executors and self.config.notifications.channels:
            from ..executors.notify import NotifyExecutor
            self.executors["notify"] = NotifyExecutor(service)
        if "docker" in abilities and "docker" not in self.executors:
            from ..executors.docker import DockerExecutor
            self.executors["docker"] = DockerExecutor(self.config.docker, self.name)
        if "kubernetes" in abilities and "kubernetes" not in self.executors:
            from ..executors.kubernetes import PodExecutor
            self.executors["kubernetes"] = PodExecutor(self.config.kubernetes, self.name, self._snapshot_access)
        self.next_reap = 0.0
        self.running: dict[str, _Running] = {}
        self._downloads = None
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if "docker" in self.executors:
            try:
                self.reap(starting=True)
            except Exception as exc:  # an engine that is down now may be up for the first step
                log.warning("could not look for containers left behind: %s", exc)
        self.beat()
        loops = [(self._heartbeats, "heartbeat"), (self._cancel_listener, "cancels")]
        if "docker" in self.executors:
            loops.append((self._reaper, "reaper"))
        for target, name in loops:
            thread = threading.Thread(target=target, name=f"strom-{name}", daemon=True)
            thread.start()
        for i in range(self.concurrency):
            thread = threading.Thread(target=self._slot, name=f"strom-slot-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)
        log.info("worker %s listening on %s", self.name, ", ".join(self.queue_names))

    def stop(self, drain: float = 10.0) -> None:
        """Stop taking steps; give running steps `drain` seconds, then stop them (they are retried)."""
        self.request_stop()
        self.wait(drain)

    def request_stop(self) -> None:
        self.stopping.set()

    def wait(self, drain: float = 10.0) -> None:
        end = time.monotonic() + drain
        while self.running and time.monotonic() < end:
            time.sleep(0.05)
        with self.lock:
            for running in self.running.values():
                running.shutdown = True
                running.cancel.set()
        for thread in self.threads:
            thread.join(timeout=15)
        self.service.workers.leave(self.name)

    def serve(self) -> None:
        self.start()
        try:
            while not self.stopping.is_set():
                self.stopping.wait(1)
        finally:
            self.stop()

    # ----------------------------------------------------------------- threads
    def beat(self) -> None:
        with self.lock:
            steps = [(r.work.job_id, r.work.step, r.work.attempt) for r in self.running.values()]
        self.service.workers.beat(self.info, steps)

    def _heartbeats(self) -> None:
        while not self.stopping.wait(self.config.heartbeat_interval):
            try:
                self.beat()
            except Exception:  # Redis hiccups must not kill the heartbeat
                log.exception("heartbeat failed")

    def _reaper(self) -> None:
        """Its own thread: a slow engine must never delay the heartbeats."""
        while not self.stopping.wait(REAP_EVERY):
            try:
                self.reap()
            except Exception as exc:  # the engine may be back next time
                log.warning("looking for containers left behind failed: %s", exc)

    def reap(self, starting: bool = False) -> list[str]:
        """Remove containers that dead workers left behind (at start: this worker's name's too)."""
        executor = self.executors.get("docker")
        if executor is None or not hasattr(executor, "client"):
            return []
        from ..executors.docker import reap
        alive = lambda name: bool(self.service.redis.exists(keys.worker_alive(name)))  # noqa: E731
        removed = reap(executor.client, alive, also=(self.name,) if starting else ())
        if removed:
            log.warning("removed %d container(s) left behind by stopped workers: %s", len(removed),
                        ", ".join(removed))
        return removed

    def _cancel_listener(self) -> None:
        pubsub = self.service.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(keys.CANCEL_CHANNEL)
        while not self.stopping.is_set():
            try:
                message = pubsub.get_message(timeout=1.0)
            except Exception:
                time.sleep(1)
                continue
            if message and message.get("type") == "message":
                with self.lock:
                    running = self.running.get(message["data"])
                if running is not None:
                    running.cancel.set()
        pubsub.close()

    def _slot(self) -> None:
        while not self.stopping.is_set():
            try:
                found = dequeue(self.queues, self.service.rq_redis)
            except Exception:
                log.exception("dequeue failed")
                time.sleep(1)
                continue
            if found is None:
                continue
            job, queue = found
            if self.stopping.is_set():  # taken while stopping: hand it back, first in line
                with self.service.rq_redis.pipeline() as pipe:
                    pipe.lrem(queue.intermediate_queue_key, 1, job.id)
                    pipe.lpush(queue.key, job.id)
                    pipe.execute()
                return
            try:
                self._handle(job, queue)
            except Exception:
                log.exception("step %s failed inside the worker", job.id)

    # ----------------------------------------------------------------- one step
    def _handle(self, job, queue) -> None:
        """The RQ job only carries the step: Strom's own state and heartbeats track it from here."""
        forget(self.service.rq_redis, job, queue)
        self.run_work(StepWork.from_dict(job.args[0]))

    def run_work(self, work: StepWork) -> None:
        key = keys.step_key(work.job_id, work.step, work.attempt)
        redis = self.service.redis
        if redis.exists(keys.cancel_flag(work.job_id, work.step, work.attempt)):
            return
        running = _Running(work)
        with self.lock:
            self.running[key] = running
        try:
            redis.set(keys.heartbeat(work.job_id, work.step, work.attempt), self.name,
                      px=int(self.config.lost_after * 1000))
            self.service.post(work.job_id, StepStarted(work.step, work.attempt, worker=self.name))
            if redis.exists(keys.cancel_flag(work.job_id, work.step, work.attempt)):
                running.cancel.set()
            logs = LogBuffer(self.service.logs, work.job_id, work.step, work.attempt)
            try:
                workspace = self._workspace(work)
            except StromError as exc:
                self.service.post(work.job_id, StepFinished(work.step, work.attempt, StepStatus.FAILED, None,
                                                            str(exc), None))
                return
            result = execute(self._executor_for(work), work, workspace, logs, running.cancel)
            logs.flush()
            status, error = result.status, result.error
            if running.shutdown and status is StepStatus.CANCELLED:
                status, error = StepStatus.FAILED, f"worker {self.name} shut down during the step"
            self.service.post(work.job_id, StepFinished(work.step, work.attempt, status, result.output, error,
                                                        result.exit_code))
        finally:
            with self.lock:
                self.running.pop(key, None)
            redis.delete(keys.heartbeat(work.job_id, work.step, work.attempt))

    def _workspace(self, work: StepWork) -> Path:
        """Where the step's files are: the snapshot on this machine's disk, else downloaded from the server."""
        if not work.snapshot:
            return Path(".")
        path = Path(work.snapshot)
        if path.is_dir() or not work.commit or path.name != work.commit:
            return path
        if self._downloads is None:
            from ..git.downloads import SnapshotDownloads
            self._downloads = SnapshotDownloads(Path(self.config.data_dir) / "snapshots", self.config.public_url,
                                                self.config.worker_token)
        return self._downloads.get(work.workspace, work.commit)

    def _snapshot_access(self, work: StepWork) -> tuple[str, str]:
        """Where a pod downloads the step's commit, and a token that opens only that, for a while."""
        from ..errors import StepSetupError
        from ..git import snapshot_tokens
        if not self.config.worker_token:
            raise StepSetupError("runner: pod needs workers.token in the configuration (it signs the token the pod "
                                 "downloads the commit with)")
        base = self.config.public_url.rstrip("/")
        if urlsplit(base).hostname in ("127.0.0.1", "localhost", "::1"):
            raise StepSetupError(f"runner: pod needs a public_url pods can reach, not {base}")
        url = f"{base}/api/workspaces/{work.workspace}/snapshots/{work.commit}.tar.gz"
        ttl = max(snapshot_tokens.TTL, self.config.kubernetes.pending_timeout + 300)  # valid until the pod starts
        return url, snapshot_tokens.issue(self.config.worker_token, work.workspace, work.commit, ttl=ttl)

    def _executor_for(self, work: StepWork):
        return self.executors.get(executor_key(work), self.executors["none"])
