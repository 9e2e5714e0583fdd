"""Cron triggers and polling, done by the scheduler that holds the lease.

A tick's run has an id made from the tick, so a tick fires exactly once however many schedulers
run, and the ticks that fall in a hand-over between two lease holders are all fired by the new one.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, cast

from .. import runs
from ..engine.events import Cancel
from ..errors import StromError
from ..runs.orchestrator import Conflict
from ..spec.cron import due_fire, ticks_between
from ..spec.model import Concurrency, TriggerType
from ..store import RunFilter, keys
from .supervision import WarnOnce

if TYPE_CHECKING:
    from ..runs.service import Service
    from ..spec.model import Trigger

__all__ = ["LEASE_MS", "Cron", "Lease", "Poller"]

log = logging.getLogger("strom.scheduler")
LEASE_MS = 10_000


class Lease:
    """The cron lease: one scheduler at a time fires ticks and polls."""

    def __init__(self, redis: Any, holder: str):
        self.redis = redis
        self.holder = holder
        self.held = False

    def renew(self) -> bool:
        if self.redis.set(keys.CRON_LEASE, self.holder, nx=True, px=LEASE_MS):
            self.held = True
        elif self.redis.get(keys.CRON_LEASE) == self.holder:
            self.redis.pexpire(keys.CRON_LEASE, LEASE_MS)
            self.held = True
        else:
            self.held = False
        return self.held

    def release(self) -> None:
        if self.redis.get(keys.CRON_LEASE) == self.holder:
            self.redis.delete(keys.CRON_LEASE)


class Cron:
    def __init__(self, service: Service, lease: Lease, warn: WarnOnce):
        self.service = service
        self.config = service.config
        self.redis = service.redis
        self.lease = lease
        self.warn = warn

    def fire(self, now: float) -> list[str]:
        """Start the runs of every tick due now (if this scheduler holds the lease); their ids."""
        if not self.lease.renew():
            return []
        checked = cast("str | None", self.redis.get(keys.CRON_CHECKED))  # the client decodes responses
        last_check = float(checked) if checked is not None else None
        # A holder checks every sweep; a gap no longer than the lease is a hand-over, not downtime: the
        # ticks since the last check are all fired. What came before follows catch_up.
        handover = last_check is not None and now - last_check <= LEASE_MS / 1000 + 2 * self.config.sweep_interval + 5
        since = last_check if handover else None
        fired = []
        for workspace in self.config.workspaces:
            try:
                loaded = runs.load_definitions(self.service, workspace).workspace
            except StromError as exc:
                self.warn(f"workspace {workspace}: {exc}")
                continue
            for trigger in loaded.triggers.values():
                if trigger.type is TriggerType.SCHEDULER and trigger.enabled:
                    fired += self._fire(workspace, trigger, now, since)
        self.redis.set(keys.CRON_CHECKED, now)
        return fired

    def _fire(self, workspace: str, trigger: Trigger, now: float, since: float | None = None) -> list[str]:
        """Fire what is due of `trigger`: the latest tick missed (as `catch_up` says), and, `since` the last
        check of a scheduler that handed the lease over, every tick. Each tick's run starts before the
        tick is recorded."""
        cron = trigger.cron
        if cron is None:  # the loader requires it of a scheduler trigger
            return []
        last_key = keys.cron_last(workspace, trigger.name)
        recorded = cast("str | None", self.redis.get(last_key))
        if recorded is None:
            self.redis.set(last_key, now, nx=True)
            return []
        last = float(recorded)
        missed = due_fire(cron, trigger.timezone, last, now if since is None else since, self.config.catch_up)
        due = [] if missed is None else [(abs(missed), missed > 0)]
        if since is not None:
            due += [(tick, True) for tick in ticks_between(cron, trigger.timezone, max(last, since), now)]
        fired = []
        for tick, fire in due:
            paused = self.service.pauses.why(workspace, trigger, f"tick:{tick}") if fire else None
            if paused:  # skipped, not deferred: resuming does not fire the ticks missed meanwhile
                log.info("trigger %s/%s: tick at %s skipped: %s", workspace, trigger.name, tick, paused)
            elif fire:
                run_id = self._start(workspace, trigger, tick)
                if run_id:
                    fired.append(run_id)
            else:
                log.info("trigger %s/%s: missed tick at %s not fired (catch_up: none)", workspace, trigger.name, tick)
            self.redis.set(last_key, tick)
        return fired

    def _start(self, workspace: str, trigger: Trigger, due: float) -> str | None:
        run_id = uuid.uuid5(uuid.NAMESPACE_URL, f"strom-cron:{workspace}:{trigger.name}:{int(due)}").hex[:16]
        if self.service.runs.exists(run_id):  # fired before (by another scheduler, or before a crash)
            return None
        active = [
            s
            for s in self.service.runs.list(RunFilter(workspace=workspace, trigger=trigger.name), limit=50).runs
            if not s.status.terminal
        ]
        if active and trigger.concurrency is Concurrency.SKIP:
            log.info("trigger %s/%s skipped: %d run(s) still active", workspace, trigger.name, len(active))
            return None
        if trigger.concurrency is Concurrency.CANCEL_PREVIOUS:
            for state in active:
                self.service.orchestrator.try_apply(state.id, Cancel(f"superseded by trigger {trigger.name}"))
        event = {"kind": "schedule", "trigger": trigger.name, "scheduled_at": due, "cron": trigger.cron}
        try:
            inputs = runs.trigger_inputs(trigger, event, None)
            state = runs.execute(
                self.service,
                workspace,
                trigger.task,
                inputs,
                source="schedule",
                trigger=trigger.name,
                event=event,
                job_id=run_id,
                fetch=trigger.force_refresh,
            )
        except Conflict:
            return None
        except StromError as exc:
            log.error("trigger %s/%s could not start %s: %s", workspace, trigger.name, trigger.task, exc)
            return None
        return state.id


class Poller:
    """Polls the git workspaces whose `poll_interval` has passed, while this scheduler holds the lease."""

    def __init__(self, service: Service, lease: Lease):
        self.service = service
        self.lease = lease
        self.next_poll: dict[str, float] = {}

    def one_pass(self) -> float:
        if self.lease.held:
            self.poll(time.time())
        return 1.0

    def poll(self, now: float) -> list[str]:
        from ..gitops.polling import poll_workspace

        created = []
        for ws in self.service.config.workspaces.values():
            if not ws.is_git or ws.poll_interval <= 0 or now < self.next_poll.get(ws.name, 0):
                continue
            self.next_poll[ws.name] = now + ws.poll_interval
            try:
                created += poll_workspace(self.service, ws)
            except StromError as exc:
                log.warning("polling workspace %s failed: %s", ws.name, exc)
        return created
