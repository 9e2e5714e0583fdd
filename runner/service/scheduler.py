"""`strom scheduler`: the orchestrator's inbox, timers, recovery sweeps, cron triggers, polling, intake of
repository events, forge reports, notifications and retention, each a loop of its own.

Several schedulers may run at once. Events and timers are safe to handle twice (runs change only
through the engine, under WATCH); cron ticks and polling belong to the holder of a lease
(runner/service/cron.py). Every thread is a supervised loop (runner/service/supervision.py): a Redis
outage is waited out, and no attempt is declared lost until Redis has been back long enough for its
worker to beat.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from ..runs import messages
from ..store import keys
from ..store.queues import SERVER_ABILITY, dequeue, rq_queue
from ..store.rqrunner import JobRunner
from ..store.workers import record_health
from .consumer import EventConsumer, QueueConsumer
from .cron import Cron, Lease, Poller
from .event_sources import EventSources
from .retention import Retention
from .supervision import Health, Loop, WarnOnce
from .sweeps import Sweeps
from .timers import Timers
from .worker import Worker, default_abilities

if TYPE_CHECKING:
    from ..runs.service import Service

__all__ = ["Scheduler"]

log = logging.getLogger("strom.scheduler")


class Scheduler:
    def __init__(
        self,
        service: Service,
        name: str | None = None,
        server_concurrency: int = 4,
        intake_threads: int = 2,
        steps: int = 0,
    ):
        """`steps`: also run script (and agent) steps here, that many at once, as a worker would (`strom up`: one
        process less)."""
        self.service = service
        self.config = service.config
        self.redis = service.redis
        self.name = name or f"scheduler-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.health = Health(f"scheduler {self.name}")
        self.stop_event = threading.Event()
        warn = WarnOnce(log)
        self.consumer = EventConsumer(service, self.name)
        self.server_worker = Worker(
            service,
            abilities=(SERVER_ABILITY,),
            concurrency=server_concurrency,
            name=f"{self.name}-server",
            health=self.health,
        )
        self.steps = Worker(service, abilities=default_abilities(self.config), concurrency=steps) if steps else None
        if self.steps is not None:  # a dead step loop stops the process, as it would a worker's
            self.steps.health.part_of = self.health
        self.intake = [
            QueueConsumer(
                self.redis, keys.INTAKE, keys.intake_busy(f"{self.name}#{i}"), self._process_event, "repository events"
            )
            for i in range(intake_threads)
        ]
        self.reporter = QueueConsumer(self.redis, keys.REPORTS, keys.reports_busy(self.name), self._report, "reports")
        self.timers = Timers(service)
        self.sweeps = Sweeps(service, self.health, self.name, warn)
        self.lease = Lease(self.redis, self.name)
        self.cron = Cron(service, self.lease, warn)
        self.poller = Poller(service, self.lease)
        self.event_sources = EventSources(service, self.lease, warn)
        self.retention = Retention(service)
        self.next_sweep = 0.0
        self.threads: list[threading.Thread] = []
        self._notify: JobRunner | None = None
        self._reporter: Any = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.server_worker.start()
        if self.steps is not None:
            self.steps.start()
        loops = [
            ("heartbeat", self._alive_once),
            ("orchestrator", self.consumer.one_pass),
            ("timers", self._timers_once),
            ("reporter", self.reporter.one_pass),
            ("poller", self.poller.one_pass),
            ("event-sources", self.event_sources.one_pass),
            ("notifier", self._notify_once),
            ("retention", self.retention.one_pass),
        ]
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
        if self.steps is not None:
            self.steps.request_stop()

    def wait(self, drain: float = 5.0) -> None:
        for thread in self.threads:
            thread.join(timeout=5)
        self.server_worker.wait(drain)
        if self.steps is not None:
            self.steps.wait()  # its steps get workers.shutdown_grace, as a worker's do
        try:
            if self._notify is not None:
                self._notify.died()
            if self.lease.held:
                self.lease.release()
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
        """Keep this scheduler's busy lists its own (and its notifier's RQ execution alive), and publish its health."""
        busy = [(c.queue, c.busy) for c in [self.consumer, self.reporter, *self.intake]]
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(keys.consumer_alive(self.name), "1", px=int(self.config.lost_after * 1000))
            pipe.hset(keys.CONSUMERS, self.name, json.dumps(busy))
            record_health(pipe, self.name, "scheduler", self.health.snapshot())
            if self._notify is not None:
                self._notify.stage_heartbeat(pipe)
            pipe.execute()

    # ----------------------------------------------------------------- timers, then sweeps when due
    def _timers_once(self) -> float:
        now = time.time()
        self.tick(now)
        return self.timers.next_due(now)

    def tick(self, now: float) -> None:
        self.timers.fire(now)
        if now >= self.next_sweep:
            self.next_sweep = now + self.config.sweep_interval
            self.sweeps.run(now)
            self.sweeps.guarded("cron", lambda: self.cron.fire(now))

    # ----------------------------------------------------------------- repository events, reports, notifications
    def _process_event(self, event_id: str) -> None:
        from ..gitops.intake import process

        process(self.service, event_id)

    def _report(self, raw: str) -> None:
        if self._reporter is None:
            from ..gitops.reporting import Reporter

            self._reporter = Reporter(self.service)
        self._reporter.handle(messages.decode(raw))

    def _notify_once(self) -> None:
        """Carry out one job of the `strom-notify` RQ queue as an RQ job. At most once: nothing hands a
        notification back, and one whose scheduler died delivering it is failed by RQ's cleanup, not resent."""
        runner = self._notifier()
        runner.tidy()
        found = dequeue(runner.queues, self.service.rq_redis)
        if found is not None:
            runner.run(*found)

    def _notifier(self) -> JobRunner:
        if self._notify is None:
            from ..notify.notifier import QUEUE, Notifier

            rq_redis = self.service.rq_redis
            runner = JobRunner(
                f"{self.name}.notify",
                [rq_queue(QUEUE, rq_redis)],
                rq_redis,
                Notifier(self.service),
                self.config.lost_after,
            )
            runner.born()
            self._notify = runner
        return self._notify
