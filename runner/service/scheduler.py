"""`strom scheduler`: the orchestrator's inbox, timers, recovery sweeps, cron triggers and retention.

Several schedulers may run at once. Events and timers are safe to handle twice (runs change only
through the engine, under WATCH); cron ticks are fired by the holder of a Redis lease, and each
tick is claimed with SET NX, so a tick fires exactly once however many schedulers run.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid

from redis.exceptions import WatchError

from ..engine.events import Cancel, StepAbandoned, Tick
from ..engine.work import StepWork
from ..errors import StromError
from ..spec.model import TriggerType
from ..store import RunFilter, keys
from ..templating import Namespace, render_value
from . import messages, runs
from .consumer import EventConsumer, QueueConsumer, handle_message
from .cron import due_fire
from .effects import enqueue_step
from .queues import SERVER_ABILITY, dequeue, describe_queue, forget, rq_queue
from .worker import Worker

__all__ = ["Scheduler"]

log = logging.getLogger("strom.scheduler")
LEASE_MS = 10_000
RETENTION_EVERY = 60.0


class Scheduler:
    def __init__(self, service, name: str | None = None, server_concurrency: int = 4, intake_threads: int = 2):
        self.service = service
        self.config = service.config
        self.redis = service.redis
        self.name = name or f"scheduler-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.stop_event = threading.Event()
        self.consumer = EventConsumer(service, self.name)
        self.server_worker = Worker(service, abilities=(SERVER_ABILITY,), concurrency=server_concurrency,
                                    name=f"{self.name}-server")
        self.intake = [QueueConsumer(self.redis, keys.INTAKE, keys.intake_busy(f"{self.name}#{i}"),
                                     self._process_event, "repository events") for i in range(intake_threads)]
        self.reporter = QueueConsumer(self.redis, keys.REPORTS, keys.reports_busy(self.name), self._report,
                                      "reports")
        self.next_poll: dict[str, float] = {}
        self.next_sweep = 0.0
        self.next_retention = 0.0
        self.holds_lease = False
        self.threads: list[threading.Thread] = []

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.alive()
        self.server_worker.start()
        loops = [(self.consumer.run, "orchestrator"), (self._timers, "timers"), (self.reporter.run, "reporter"),
                 (self._poller, "poller"), (self._notifier, "notifier")] + [(c.run, f"intake-{i}") for i, c in enumerate(self.intake)]
        for target, label in loops:
            thread = threading.Thread(target=target, args=(self.stop_event,), name=f"strom-{label}", daemon=True)
            thread.start()
            self.threads.append(thread)
        log.info("scheduler %s started", self.name)

    def stop(self) -> None:
        self.request_stop()
        self.wait()

    def request_stop(self) -> None:
        self.stop_event.set()
        self.server_worker.request_stop()

    def wait(self, drain: float = 5.0) -> None:
        for thread in self.threads:
            thread.join(timeout=5)
        self.server_worker.wait(drain)
        if self.holds_lease:
            self._release_lease()
        self.redis.delete(keys.consumer_alive(self.name))

    def serve(self) -> None:
        self.start()
        try:
            while not self.stop_event.wait(1):
                pass
        finally:
            self.stop()

    def alive(self) -> None:
        self.redis.set(keys.consumer_alive(self.name), "1", px=int(self.config.lost_after * 1000))

    # ----------------------------------------------------------------- notifications
    def _notifier(self, stop: threading.Event) -> None:
        """Carry out the jobs of the `strom-notify` RQ queue, one at a time."""
        from ..notify.notifier import QUEUE, Notifier
        connection = self.service.rq_redis
        queue, notifier = rq_queue(QUEUE, connection), Notifier(self.service)
        while not stop.is_set():
            try:
                found = dequeue([queue], connection)
            except Exception:
                log.exception("taking a notification failed")
                stop.wait(1)
                continue
            if found is None:
                continue
            job, taken_from = found
            try:  # at most once: a notification is not worth sending twice after a crash
                forget(connection, job, taken_from)
                notifier.handle(job.args[0])
            except Exception:  # a notification never stops the scheduler
                log.exception("notification %s failed", job.id)

    # ----------------------------------------------------------------- the timer loop
    def _timers(self, stop: threading.Event) -> None:
        while not stop.is_set():
            now = time.time()
            try:
                self.tick(now)
            except Exception:
                log.exception("timer pass failed")
            stop.wait(self._sleep(now))

    def _sleep(self, now: float) -> float:
        upcoming = [now + 0.5]
        for key in (keys.WAKE, keys.DELAYED):
            first = self.redis.zrange(key, 0, 0, withscores=True)
            if first:
                upcoming.append(first[0][1])
        return max(0.01, min(upcoming) - time.time())

    def tick(self, now: float) -> None:
        """One pass: wake runs whose deadlines passed, release delayed work, and sweep when due."""
        self.wake_due(now)
        self.release_delayed(now)
        if now >= self.next_sweep:
            self.next_sweep = now + self.config.sweep_interval
            self.alive()
            self.sweep_lost(now)
            self.sweep_unmatched(now)
            self.sweep_consumers()
            self.fire_cron(now)
        if now >= self.next_retention:
            self.next_retention = now + RETENTION_EVERY
            self.enforce_retention(now)

    def wake_due(self, now: float) -> None:
        for job_id in self.redis.zrangebyscore(keys.WAKE, "-inf", now, start=0, num=200):
            if self.service.orchestrator.try_apply(job_id, Tick(), now) is None:
                self.redis.zrem(keys.WAKE, job_id)

    def release_delayed(self, now: float) -> None:
        for raw in self.redis.zrangebyscore(keys.DELAYED, "-inf", now, start=0, num=200):
            message = messages.decode(raw)
            if message["kind"] == messages.DISPATCH:
                self._release_dispatch(raw, StepWork.from_dict(message["work"]), now)
            else:
                handle_message(self.service, message)
                self.redis.zrem(keys.DELAYED, raw)

    def _release_dispatch(self, raw: str, work: StepWork, now: float) -> None:
        state = self.service.jobs.load(work.job_id)
        run = state.steps.get(work.step) if state else None
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(keys.DELAYED)
                if pipe.zscore(keys.DELAYED, raw) is None:
                    return
                pipe.multi()
                pipe.zrem(keys.DELAYED, raw)
                if run is not None and run.status.value == "queued" and run.attempt == work.attempt:
                    enqueue_step(pipe, self.redis, work, now)
                pipe.execute()
            except WatchError:
                return

    # ----------------------------------------------------------------- recovery sweeps
    def sweep_lost(self, now: float) -> None:
        """Steps whose worker stopped beating: retried if they have attempts left, else failed."""
        entries = self.redis.hgetall(keys.RUNNING)
        if not entries:
            return
        step_keys = list(entries)
        beats = self.redis.mget([keys.heartbeat(*keys.parse_step_key(k)) for k in step_keys])
        for step_key, beat in zip(step_keys, beats):
            if beat:
                continue
            info = json.loads(entries[step_key])
            if now - float(info.get("since") or 0) < self.config.lost_after:
                continue
            job_id, step, attempt = keys.parse_step_key(step_key)
            worker = info.get("worker") or "its worker"
            event = StepAbandoned(step, attempt, f"worker lost: {worker} stopped sending heartbeats", retry=True)
            if self.service.orchestrator.try_apply(job_id, event, now) is None:
                self.redis.hdel(keys.RUNNING, step_key)

    def sweep_unmatched(self, now: float) -> None:
        """Queued steps no live worker can take fail after `unmatched_timeout`, naming what is missing."""
        entries = self.redis.hgetall(keys.QUEUED)
        if not entries:
            return
        offered = None
        for step_key, raw in entries.items():
            info = json.loads(raw)
            if now - float(info["since"]) < self.config.unmatched_timeout:
                continue
            if offered is None:
                live = self.service.workers.live()
                offered = {q for w in live for q in w.queues}
                summary = ", ".join(f"{w.name} [{', '.join(w.abilities)}{'; ' + ', '.join(w.tags) if w.tags else ''}]"
                                    for w in live) or "none"
            if info["queue"] in offered:
                continue
            job_id, step, attempt = keys.parse_step_key(step_key)
            ability = describe_queue(info["queue"])
            error = (f"no live worker offers {ability} (waited {int(now - float(info['since']))}s; live workers: "
                     f"{summary}); start one with `strom worker --abilities ...`")
            if self.service.orchestrator.try_apply(job_id, StepAbandoned(step, attempt, error, retry=False), now) is None:
                self.redis.hdel(keys.QUEUED, step_key)

    def sweep_consumers(self) -> None:
        """Hand back what a dead scheduler was holding."""
        for queue, busy_key in ((keys.EVENTS, keys.events_busy), (keys.INTAKE, keys.intake_busy),
                                (keys.REPORTS, keys.reports_busy)):
            for busy in self.redis.scan_iter(match=busy_key("*")):
                owner = busy[len(busy_key("")):].split("#", 1)[0]
                if owner == self.name or self.redis.exists(keys.consumer_alive(owner)):
                    continue
                while self.redis.lmove(busy, queue, "RIGHT", "LEFT") is not None:
                    pass

    # ----------------------------------------------------------------- repository events
    def _process_event(self, event_id: str) -> None:
        from ..gitops.intake import process
        process(self.service, event_id)

    def _report(self, raw: str) -> None:
        from ..gitops.reporting import Reporter
        if not hasattr(self, "_reporter"):
            self._reporter = Reporter(self.service)
        self._reporter.handle(messages.decode(raw))

    def _poller(self, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            if self.holds_lease:
                try:
                    self.poll(time.time())
                except Exception:
                    log.exception("polling failed")

    def poll(self, now: float) -> list[str]:
        """Poll the workspaces whose interval has passed (the lease holder does this)."""
        from ..gitops.polling import poll_workspace
        created = []
        for ws in self.config.workspaces.values():
            if not ws.is_git or ws.poll_interval <= 0 or now < self.next_poll.get(ws.name, 0):
                continue
            self.next_poll[ws.name] = now + ws.poll_interval
            try:
                created += poll_workspace(self.service, ws)
            except StromError as exc:
                log.warning("polling workspace %s failed: %s", ws.name, exc)
        return created

    # ----------------------------------------------------------------- cron
    def _lease(self) -> bool:
        if self.redis.set(keys.CRON_LEASE, self.name, nx=True, px=LEASE_MS):
            self.holds_lease = True
        elif self.redis.get(keys.CRON_LEASE) == self.name:
            self.redis.pexpire(keys.CRON_LEASE, LEASE_MS)
            self.holds_lease = True
        else:
            self.holds_lease = False
        return self.holds_lease

    def _release_lease(self) -> None:
        if self.redis.get(keys.CRON_LEASE) == self.name:
            self.redis.delete(keys.CRON_LEASE)

    def fire_cron(self, now: float) -> list[str]:
        if not self._lease():
            return []
        fired = []
        for workspace in self.config.workspaces:
            try:
                loaded = runs.load_definitions(self.service, workspace).workspace
            except StromError as exc:
                self._warn_once(f"workspace {workspace}: {exc}")
                continue
            for trigger in loaded.triggers.values():
                if trigger.type is TriggerType.SCHEDULER and trigger.enabled:
                    run_id = self._fire(workspace, trigger, now)
                    if run_id:
                        fired.append(run_id)
        return fired

    def _warn_once(self, message: str) -> None:
        """Log a problem when it first appears, not on every sweep."""
        seen = self.__dict__.setdefault("_warned", set())
        if message not in seen:
            seen.add(message)
            log.warning("%s", message)

    def _fire(self, workspace: str, trigger, now: float) -> str | None:
        last_key = keys.cron_last(workspace, trigger.name)
        last = self.redis.get(last_key)
        if last is None:
            self.redis.set(last_key, now, nx=True)
            return None
        due = due_fire(trigger.cron, trigger.timezone, float(last), now, self.config.catch_up)
        if due is None:
            return None
        self.redis.set(last_key, abs(due))
        if due < 0:
            log.info("trigger %s/%s: missed tick at %s not fired (catch_up: none)", workspace, trigger.name, -due)
            return None
        if not self.redis.set(keys.cron_fired(workspace, trigger.name, int(due)), self.name, nx=True, ex=7 * 86400):
            return None
        return self._start_triggered(workspace, trigger, due)

    def _start_triggered(self, workspace: str, trigger, due: float) -> str | None:
        active = [s for s in self.service.jobs.list(RunFilter(workspace=workspace, trigger=trigger.name), limit=50).runs
                  if not s.status.terminal]
        if active and trigger.concurrency == "skip":
            log.info("trigger %s/%s skipped: %d run(s) still active", workspace, trigger.name, len(active))
            return None
        if trigger.concurrency == "cancel_previous":
            for state in active:
                self.service.orchestrator.try_apply(state.id, Cancel(f"superseded by trigger {trigger.name}"))
        event = {"kind": "schedule", "trigger": trigger.name, "scheduled_at": due, "cron": trigger.cron}
        context = {"event": Namespace("event", event), "git": Namespace("git", {})}
        try:
            inputs = render_value(dict(trigger.input), context, f"{trigger.location} (trigger {trigger.name!r})")
            state = runs.execute(self.service, workspace, trigger.task, inputs, source="schedule",
                                 trigger=trigger.name, event=event,
                                 job_id=uuid.uuid5(uuid.NAMESPACE_URL, f"strom-cron:{workspace}:{trigger.name}:"
                                                   f"{int(due)}").hex[:16])
        except StromError as exc:
            log.error("trigger %s/%s could not start %s: %s", workspace, trigger.name, trigger.task, exc)
            return None
        return state.id

    # ----------------------------------------------------------------- retention
    def enforce_retention(self, now: float) -> int:
        self.service.repo_events.delete_older_than(now - self.config.retention_max_age)
        self.collect_snapshots()
        removed = 0
        for workspace in self._known_workspaces():
            index = keys.runs_by("workspace", workspace)
            old_ids = self.redis.zrangebyscore(index, "-inf", now - self.config.retention_max_age)
            excess = self.redis.zcard(index) - self.config.retention_max_runs
            if excess > 0:
                old_ids = list(dict.fromkeys(old_ids + self.redis.zrange(index, 0, excess - 1)))
            for start in range(0, len(old_ids), 200):
                states = self.service.jobs.load_many(old_ids[start:start + 200])
                removed += self.service.jobs.delete(s for s in states if s.status.terminal)
        return removed

    def collect_snapshots(self) -> list[str]:
        """Remove commit snapshots (and their archives) that no unfinished run uses and nothing used lately."""
        if not (self.service.repos.root / "snapshots").is_dir():
            return []
        active = self.service.jobs.load_many(self.service.jobs.active_ids())
        keep = {os.path.basename(s.snapshot) for s in active if s.snapshot}
        removed = self.service.repos.snapshots.collect(keep, self.config.retention_snapshots)
        for sha in removed:
            (self.service.repos.archives / f"{sha}.tar.gz").unlink(missing_ok=True)
        cutoff = time.time() - 86400
        for record in self.service.repos.root.glob("push-*.txt"):  # left by a web process that died mid-push
            if record.stat().st_mtime < cutoff:
                record.unlink(missing_ok=True)
        return removed

    def _known_workspaces(self) -> list[str]:
        names = set(self.config.workspaces)
        for key in self.redis.scan_iter(match=keys.runs_by("workspace", "*")):
            names.add(key.rsplit(":", 1)[-1])
        return sorted(names)

