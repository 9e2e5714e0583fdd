"""`strom scheduler`: the orchestrator's inbox, timers, recovery sweeps, cron triggers and retention.

Several schedulers may run at once. Events and timers are safe to handle twice (runs change only
through the engine, under WATCH). Cron ticks are fired by the holder of a Redis lease; a tick's
run has an id made from the tick, so a tick fires exactly once however many schedulers run, and
the ticks that fall in a hand-over between two holders are all fired by the new one.
Every thread is a supervised loop (runner/service/supervision.py): a Redis outage is waited out,
and no attempt is declared lost until Redis has been back long enough for its worker to beat.
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

from ..engine.events import Cancel, StepAbandoned, StepFinished, Tick
from ..engine.status import StepStatus
from ..engine.work import StepWork
from ..errors import StromError
from ..spec.model import TriggerType
from ..store import RunFilter, keys
from ..store.connection import is_outage
from ..store.workers import record_health
from ..templating import Namespace, render_value
from ..runs import messages
from .. import runs
from .consumer import EventConsumer, QueueConsumer, handle_message
from ..spec.cron import due_fire, ticks_between
from ..runs.effects import enqueue_step
from ..runs.orchestrator import Conflict
from ..store.queues import SERVER_ABILITY, dequeue, describe_queue, forget, rq_queue
from .supervision import Health, Loop
from .worker import Worker

__all__ = ["Scheduler"]

log = logging.getLogger("strom.scheduler")
LEASE_MS = 10_000
RETENTION_EVERY = 60.0
RETENTION_BATCH = 500


class Scheduler:
    def __init__(self, service, name: str | None = None, server_concurrency: int = 4, intake_threads: int = 2):
        self.service = service
        self.config = service.config
        self.redis = service.redis
        self.name = name or f"scheduler-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.health = Health(f"scheduler {self.name}")
        self.stop_event = threading.Event()
        self.consumer = EventConsumer(service, self.name)
        self.server_worker = Worker(service, abilities=(SERVER_ABILITY,), concurrency=server_concurrency,
                                    name=f"{self.name}-server", health=self.health)
        self.intake = [QueueConsumer(self.redis, keys.INTAKE, keys.intake_busy(f"{self.name}#{i}"),
                                     self._process_event, "repository events") for i in range(intake_threads)]
        self.reporter = QueueConsumer(self.redis, keys.REPORTS, keys.reports_busy(self.name), self._report,
                                      "reports")
        self.next_poll: dict[str, float] = {}
        self.next_sweep = 0.0
        self.holds_lease = False
        self.threads: list[threading.Thread] = []
        self._notify_queue = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.server_worker.start()
        loops = [("heartbeat", self._alive_once), ("orchestrator", self.consumer.one_pass), ("timers", self._timers_once),
                 ("reporter", self.reporter.one_pass), ("poller", self._poll_once), ("notifier", self._notify_once),
                 ("retention", self._retention_once)]
        loops += [(f"intake-{i}", c.one_pass) for i, c in enumerate(self.intake)]
        for label, one_pass in loops:
            self.threads.append(Loop(self.health, label, one_pass, self.stop_event).start())
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
        try:
            if self.holds_lease:
                self._release_lease()
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.delete(keys.consumer_alive(self.name))
                pipe.hdel(keys.PROCESSES, self.name)
                pipe.execute()
        except Exception as exc:  # noqa: BLE001 - Redis may be away: the lease and keys expire by themselves
            log.warning("could not say goodbye to Redis: %s", exc)

    def _alive_once(self) -> float:
        self.alive()
        return self.config.heartbeat_interval

    def alive(self) -> None:
        """Keep this scheduler's busy lists its own, and publish its health."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(keys.consumer_alive(self.name), "1", px=int(self.config.lost_after * 1000))
            pipe.hset(keys.CONSUMERS, self.name, json.dumps(self._busy_lists()))
            record_health(pipe, self.name, "scheduler", self.health.snapshot())
            pipe.execute()

    # ----------------------------------------------------------------- notifications
    def _notify_once(self) -> None:
        """Carry out one job of the `strom-notify` RQ queue."""
        from ..notify.notifier import QUEUE, Notifier
        if self._notify_queue is None:
            self._notify_queue = (rq_queue(QUEUE, self.service.rq_redis), Notifier(self.service))
        queue, notifier = self._notify_queue
        found = dequeue([queue], self.service.rq_redis)
        if found is None:
            return
        job, _ = found
        forget(self.service.rq_redis, job)  # at most once: a notification is not worth sending twice after a crash
        try:
            notifier.handle(job.args[0])
        except Exception:  # a notification never stops the scheduler
            log.exception("notification %s failed", job.id)

    # ----------------------------------------------------------------- the timer loop
    def _timers_once(self) -> float:
        now = time.time()
        self.tick(now)
        return self._sleep(now)

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
            queued = self.redis.hgetall(keys.QUEUED)
            for name, sweep in (("lost", lambda: self.sweep_lost(now)), ("orphans", lambda: self.sweep_orphans(now, queued)),
                                ("unmatched", lambda: self.sweep_unmatched(now, queued)),
                                ("consumers", lambda: self.sweep_consumers(now)), ("cron", lambda: self.fire_cron(now))):
                self._guarded(name, sweep)

    def _guarded(self, name: str, sweep) -> None:
        """Run one sweep; a bug in it is logged, shown in the health record, and keeps no other sweep from running."""
        try:
            sweep()
        except Exception as exc:
            if is_outage(exc):
                raise
            self.health.set(f"sweep-{name}", "failing", f"{type(exc).__name__}: {exc}"[:300])
            self._warn_once(f"sweep {name} failed: {type(exc).__name__}: {exc}", exc)
        else:
            if f"sweep-{name}" in self.health.loops:
                self.health.set(f"sweep-{name}", "running")

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
    def _steady(self, now: float) -> bool:
        """Whether Redis has answered long enough for every live worker to have beaten since (no false losses)."""
        return self.health.redis_steady_for(now) >= self.config.lost_after

    def sweep_lost(self, now: float) -> None:
        """Attempts whose worker stopped beating: their stored result is applied if they have one, else
        they are retried if they have attempts left, or failed."""
        entries = self.redis.hgetall(keys.RUNNING)
        if not entries or not self._steady(now):
            return
        step_keys = list(entries)
        with self.redis.pipeline(transaction=False) as pipe:
            for step_key in step_keys:
                pipe.exists(keys.heartbeat(*keys.parse_step_key(step_key)))
                pipe.get(keys.result(*keys.parse_step_key(step_key)))
            answers = pipe.execute()
        for i, step_key in enumerate(step_keys):
            beat, result = answers[2 * i], answers[2 * i + 1]
            if beat:
                continue
            info = json.loads(entries[step_key])
            if now - float(info.get("since") or 0) < self.config.lost_after:
                continue
            self._each(step_key, lambda: self._lost(step_key, info, result, now))

    def _lost(self, step_key: str, info: dict, result: str | None, now: float) -> None:
        job_id, step, attempt = keys.parse_step_key(step_key)
        event = messages.decode(result).get("event") if result else None
        if not isinstance(event, StepFinished):  # no report of its end is waiting anywhere: lost
            worker = info.get("worker") or "its worker"
            event = StepAbandoned(step, attempt, f"worker lost: {worker} stopped sending heartbeats", retry=True)
        if self.service.orchestrator.try_apply(job_id, event, now) is None:
            self.redis.hdel(keys.RUNNING, step_key)

    def _each(self, what: str, act) -> None:
        """One entry of a sweep: a bug in one (its definitions are gone, say) does not stop the others."""
        try:
            act()
        except Exception as exc:
            if is_outage(exc):
                raise
            self._warn_once(f"sweeping {what} failed: {type(exc).__name__}: {exc}", exc)

    def sweep_orphans(self, now: float, queued: dict) -> None:
        """Queued attempts that left their queue but that no live worker holds go back to their queue.

        A worker takes an attempt's id off its queue and then claims it; one that dies in between, or
        after claiming but before its start is recorded, leaves the attempt nowhere. Handing it back
        is safe even if its taker is only slow: the claim lets one worker run an attempt."""
        infos = {key: json.loads(raw) for key, raw in queued.items()}
        stale = {key: info for key, info in infos.items() if now - float(info["since"]) >= self.config.lost_after}
        if not stale or not self._steady(now):
            return
        step_keys = list(stale)
        with self.redis.pipeline(transaction=False) as pipe:
            for step_key in step_keys:
                pipe.get(keys.claim(*keys.parse_step_key(step_key)))
            owners = pipe.execute()
            for queue in {info["queue"] for info in stale.values()}:
                pipe.lrange(rq_queue(queue, self.service.rq_redis).key, 0, -1)
            waiting = set().union(*pipe.execute())
            for owner in owners:
                pipe.exists(keys.worker_alive(owner or "-"))
            alive = pipe.execute()
        for step_key, owner, owner_alive in zip(step_keys, owners, alive):
            job_id, step, attempt = keys.parse_step_key(step_key)
            if (owner and owner_alive) or (not owner and keys.rq_job_id(job_id, step, attempt) in waiting):
                continue
            self._each(step_key, lambda: self._hand_back(job_id, step, attempt, stale[step_key]["queue"], owner, now))

    def _hand_back(self, job_id: str, step: str, attempt: int, queue: str, owner: str | None, now: float) -> None:
        """Put the attempt back on its queue, if it still waits for a worker at that attempt and its claim is
        still what the sweep saw (another scheduler may have handed it back meanwhile)."""
        claim, step_key = keys.claim(job_id, step, attempt), keys.step_key(job_id, step, attempt)
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(keys.job(job_id), claim)
                state = self.service.jobs.load(job_id, client=pipe)
                run = state.steps.get(step) if state is not None else None
                if run is None or run.status is not StepStatus.QUEUED or run.attempt != attempt:
                    pipe.reset()
                    self.redis.hdel(keys.QUEUED, step_key)  # a stale entry: the attempt moved on
                    return
                if pipe.get(claim) != owner:
                    pipe.reset()
                    return
                has_job = pipe.exists(keys.rq_job(job_id, step, attempt))
                pipe.multi()
                if has_job:
                    if owner:
                        pipe.delete(claim)
                    pipe.lpush(rq_queue(queue, self.service.rq_redis).key, keys.rq_job_id(job_id, step, attempt))
                    pipe.hset(keys.QUEUED, step_key, json.dumps({"queue": queue, "since": now}))
                pipe.execute()
            except WatchError:
                return  # it changed meanwhile: the next sweep looks again
        who = f"its worker {owner} is gone" if owner else "no worker took it"
        if has_job:
            log.warning("attempt %d of %s/%s left its queue but %s: handed back to %s", attempt, job_id, step, who,
                        queue)
        else:  # nothing to hand back (no worker can take it either): end the attempt, for a retry
            self.service.orchestrator.try_apply(job_id, StepAbandoned(step, attempt, f"its queue entry was lost ({who})",
                                                                      retry=True), now)

    def sweep_unmatched(self, now: float, queued: dict | None = None) -> None:
        """Queued steps no live worker can take fail after `unmatched_timeout`, naming what is missing."""
        entries = self.redis.hgetall(keys.QUEUED) if queued is None else queued
        if not entries or not self._steady(now):  # after an outage, workers first beat again
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

    def _busy_lists(self) -> list[tuple[str, str]]:
        """(queue, busy list) of every consumer of this scheduler."""
        return [(c.queue, c.busy) for c in [self.consumer, self.reporter, *self.intake]]

    def sweep_consumers(self, now: float) -> None:
        """Hand back what a dead scheduler was holding (once Redis has answered long enough for it to beat)."""
        if not self._steady(now):
            return
        for owner, raw in self.redis.hgetall(keys.CONSUMERS).items():
            if owner == self.name or self.redis.exists(keys.consumer_alive(owner)):
                continue
            for queue, busy in json.loads(raw):
                while self.redis.lmove(busy, queue, "RIGHT", "LEFT") is not None:
                    pass
            self.redis.hdel(keys.CONSUMERS, owner)

    # ----------------------------------------------------------------- repository events
    def _process_event(self, event_id: str) -> None:
        from ..gitops.intake import process
        process(self.service, event_id)

    def _report(self, raw: str) -> None:
        from ..gitops.reporting import Reporter
        if not hasattr(self, "_reporter"):
            self._reporter = Reporter(self.service)
        self._reporter.handle(messages.decode(raw))

    def _poll_once(self) -> float:
        if self.holds_lease:
            self.poll(time.time())
        return 1.0

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
        checked = self.redis.get(keys.CRON_CHECKED)
        # A holder checks every sweep; a gap no longer than the lease is a hand-over, not downtime: the
        # ticks since the last check are all fired. What came before follows catch_up.
        handover = checked is not None and now - float(checked) <= LEASE_MS / 1000 + 2 * self.config.sweep_interval + 5
        since = float(checked) if handover else None
        fired = []
        for workspace in self.config.workspaces:
            try:
                loaded = runs.load_definitions(self.service, workspace).workspace
            except StromError as exc:
                self._warn_once(f"workspace {workspace}: {exc}")
                continue
            for trigger in loaded.triggers.values():
                if trigger.type is TriggerType.SCHEDULER and trigger.enabled:
                    fired += self._fire(workspace, trigger, now, since)
        self.redis.set(keys.CRON_CHECKED, now)
        return fired

    def _warn_once(self, message: str, exc: BaseException | None = None) -> None:
        """Log a problem when it first appears, not on every sweep."""
        seen = self.__dict__.setdefault("_warned", set())
        if message not in seen:
            seen.add(message)
            log.warning("%s", message, exc_info=exc)

    def _fire(self, workspace: str, trigger, now: float, since: float | None = None) -> list[str]:
        """Fire what is due of `trigger`: the latest tick missed (as `catch_up` says), and, `since` the last
        check of a scheduler that handed the lease over, every tick. Each tick's run starts before the
        tick is recorded."""
        last_key = keys.cron_last(workspace, trigger.name)
        last = self.redis.get(last_key)
        if last is None:
            self.redis.set(last_key, now, nx=True)
            return []
        last = float(last)
        missed = due_fire(trigger.cron, trigger.timezone, last, now if since is None else since, self.config.catch_up)
        due = [] if missed is None else [(abs(missed), missed > 0)]
        if since is not None:
            due += [(tick, True) for tick in ticks_between(trigger.cron, trigger.timezone, max(last, since), now)]
        fired = []
        for tick, fire in due:
            if fire:
                run_id = self._start_triggered(workspace, trigger, tick)
                if run_id:
                    fired.append(run_id)
            else:
                log.info("trigger %s/%s: missed tick at %s not fired (catch_up: none)", workspace, trigger.name, tick)
            self.redis.set(last_key, tick)
        return fired

    def _start_triggered(self, workspace: str, trigger, due: float) -> str | None:
        run_id = uuid.uuid5(uuid.NAMESPACE_URL, f"strom-cron:{workspace}:{trigger.name}:{int(due)}").hex[:16]
        if self.service.jobs.exists(run_id):  # fired before (by another scheduler, or before a crash)
            return None
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
                                 trigger=trigger.name, event=event, job_id=run_id)
        except Conflict:
            return None
        except StromError as exc:
            log.error("trigger %s/%s could not start %s: %s", workspace, trigger.name, trigger.task, exc)
            return None
        return state.id

    # ----------------------------------------------------------------- retention
    def _retention_once(self) -> float:
        self.enforce_retention(time.time())
        return RETENTION_EVERY

    def enforce_retention(self, now: float) -> int:
        """Delete what is past `retention`: repository events, runs with their logs, unused snapshots.
        Each kind is deleted in batches until none is left, however much arrived since the last pass."""
        self.service.repo_events.delete_older_than(now - self.config.retention_max_age)
        self.collect_snapshots()
        removed = 0
        for workspace in sorted(set(self.config.workspaces) | set(self.service.jobs.workspaces())):
            index = keys.runs_by("workspace", workspace)
            old_ids = self.redis.zrangebyscore(index, "-inf", now - self.config.retention_max_age)
            excess = self.redis.zcard(index) - self.config.retention_max_runs
            if excess > 0:
                old_ids = list(dict.fromkeys(old_ids + self.redis.zrange(index, 0, excess - 1)))
            for start in range(0, len(old_ids), RETENTION_BATCH):
                states = self.service.jobs.load_many(old_ids[start:start + RETENTION_BATCH])
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
