"""Event source triggers, tended by the scheduler that holds the cron lease.

An event source keeps one run of its consumer task going: every `OUTPUT: {json}` line the consumer prints on
stdout is an event, and starts one run of the target task with that JSON as its input. The consumer's log is
the queue: a cursor in Redis says how far it was read, and the target run of a line has an id made from the
consumer run and the line, so a line starts its run exactly once, whichever scheduler reads it and however
often one dies mid-way. At most `max_in_flight` target runs are unfinished at once; further lines wait in the
log (so does everything while the target task is paused). When the consumer's run ends, it is started again as
`restart_policy` says, after `backoff_secs`; before its log could reach the log limits (and lines be cut),
it is cancelled and started again at once. Pausing the trigger or the consumer task stops the consumer;
removing the trigger cancels it and forgets the source.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, cast

from .. import runs
from ..engine.events import Cancel
from ..engine.status import RunStatus
from ..errors import StromError
from ..outputs import OUTPUT_PREFIX
from ..runs.orchestrator import Conflict
from ..spec.model import RestartPolicy, TriggerType
from ..store import keys
from ..store.event_sources import SOURCE_SEP, SourceState

if TYPE_CHECKING:
    from ..engine.state import RunState
    from ..runs.service import Service
    from ..spec.model import Trigger
    from .cron import Lease
    from .supervision import WarnOnce

__all__ = ["RECYCLE_AT", "EventSources", "parse_event"]

log = logging.getLogger("strom.scheduler")
RECYCLE_AT = 0.75  # of the log limits: a consumer whose log has used this much is started afresh
LINES_PER_PASS = 500  # log lines read per source and pass


class EventSources:
    def __init__(self, service: Service, lease: Lease, warn: WarnOnce):
        self.service = service
        self.redis = service.redis
        self.lease = lease
        self.warn = warn
        self._sources: dict[tuple[str, str], Trigger] = {}  # (workspace, trigger) -> its definition
        self._next_look = 0.0

    def one_pass(self) -> float:
        if self.lease.held:
            self.tend(time.time())
        return 0.25

    def tend(self, now: float) -> None:
        """Tend every known source; look for new and removed ones in the definitions every sweep interval (loading
        definitions reads files or git, too much to do four times a second)."""
        if now >= self._next_look:
            self._next_look = now + self.service.config.sweep_interval
            self._look()
        for (workspace, name), trigger in self._sources.items():
            try:
                self._tend(workspace, trigger, now)
            except StromError as exc:
                self.warn(f"event source {workspace}/{name}: {exc}")
                self._note(workspace, name, last_error=str(exc))

    def _look(self) -> None:
        """Find the enabled event sources in the definitions; forget those that are gone."""
        found: dict[tuple[str, str], Trigger] = {}
        kept: set[str] = set()
        for workspace in self.service.config.workspaces:
            try:
                loaded = runs.load_definitions(self.service, workspace).workspace
            except StromError as exc:  # its sources go on as they are until its definitions load again
                self.warn(f"workspace {workspace}: {exc}")
                found.update({key: t for key, t in self._sources.items() if key[0] == workspace})
                known = cast("set[str]", self.redis.smembers(keys.EVENT_SOURCES))
                kept |= {member for member in known if member.partition(SOURCE_SEP)[0] == workspace}
                continue
            for trigger in loaded.triggers.values():
                if trigger.type is TriggerType.EVENT_SOURCE and trigger.enabled:
                    found[(workspace, trigger.name)] = trigger
        if found:
            self.redis.sadd(keys.EVENT_SOURCES, *(f"{ws}{SOURCE_SEP}{name}" for ws, name in found))
        self._sources = found
        wanted = {f"{ws}{SOURCE_SEP}{name}" for ws, name in found} | kept
        for member in cast("set[str]", self.redis.smembers(keys.EVENT_SOURCES)) - wanted:
            workspace, _, name = member.partition(SOURCE_SEP)
            self._forget(workspace, name)

    # ----------------------------------------------------------------- one source
    def _tend(self, workspace: str, trigger: Trigger, now: float) -> None:
        key = keys.event_source(workspace, trigger.name)
        state = SourceState.load(self.redis, workspace, trigger.name)
        consumer = self.service.runs.load(state.run) if state.run else None
        paused = self.service.pauses.why(workspace, trigger, f"event-source:{state.generation}")
        if consumer is not None and not consumer.status.terminal:
            if paused:
                self.redis.hset(key, "recycle", "1")  # resumed, it starts at once whatever its policy
                self._stop(consumer, f"{paused}; the consumer stops until it is resumed")
                return
            self._deliver(workspace, trigger, consumer, state)
            if self._log_full(consumer):
                self.redis.hset(key, "recycle", "1")
                self._stop(consumer, "its log neared the log limits: the consumer starts afresh")
            return
        if paused:
            if state.stopped != paused:
                self._note(workspace, trigger.name, stopped=paused)
            return
        if consumer is None:
            if state.run and not state.stopped:  # recorded, then its scheduler died before starting it
                self._start(workspace, trigger, state.generation)
            elif not state.run:
                self._start(workspace, trigger, 1)
            return
        if not self._deliver(workspace, trigger, consumer, state):
            return  # its lines first: the next consumer starts once the last one's are all delivered
        if not state.recycle:
            why = _no_restart(trigger, consumer)
            if why:
                if state.stopped != why:
                    self._note(workspace, trigger.name, stopped=why)
                return
            if now < (consumer.finished_at or now) + trigger.backoff_secs:
                return
        self._start(workspace, trigger, state.generation + 1)

    def _start(self, workspace: str, trigger: Trigger, generation: int) -> None:
        run_id = uuid.uuid5(uuid.NAMESPACE_URL, f"strom-event-source:{workspace}:{trigger.name}:{generation}").hex[:16]
        # recorded first: if this scheduler dies before the run exists, the next pass starts the same run
        self.redis.hset(
            keys.event_source(workspace, trigger.name),
            mapping={"generation": generation, "run": run_id, "cursor": "0-0", "stopped": "", "recycle": ""},
        )
        event = {"kind": "event_source", "trigger": trigger.name, "generation": generation}
        if not self._run(workspace, trigger, trigger.task, runs.trigger_inputs(trigger, event, None), event, run_id):
            return  # it exists: started by the holder of the lease before this one
        log.info(
            "event source %s/%s: consumer run %s started (generation %d)", workspace, trigger.name, run_id, generation
        )

    def _run(self, workspace: str, trigger: Trigger, task: str, inputs: dict, event: dict, run_id: str) -> bool:
        """Start a run of the source under an id made from what it is for; False when that run exists already."""
        try:
            runs.execute(
                self.service,
                workspace,
                task,
                inputs,
                source="event_source",
                trigger=trigger.name,
                event=event,
                job_id=run_id,
            )
        except Conflict:
            return False
        return True

    def _stop(self, consumer: RunState, why: str) -> None:
        self.service.orchestrator.try_apply(consumer.id, Cancel(why, by="strom"))

    def _log_full(self, consumer: RunState) -> bool:
        config = self.service.config
        used = int(cast("str | None", self.redis.get(keys.log_bytes(consumer.id))) or 0)
        return used >= RECYCLE_AT * min(config.log_max_step, config.log_max_run)

    # ----------------------------------------------------------------- delivering lines
    def _deliver(self, workspace: str, trigger: Trigger, consumer: RunState, state: SourceState) -> bool:
        """Start the target runs of the consumer's new OUTPUT lines, as many as there is room for; whether every
        line of its log has been read."""
        room = trigger.max_in_flight - self._in_flight(workspace, trigger.name)
        if f"task:{trigger.target_task}" in self.service.pauses.of(workspace):
            room = 0  # the lines wait in the log until the target task is resumed
        page = self.service.logs.page(consumer.id, after=state.cursor, limit=LINES_PER_PASS)
        cursor, delivered, refused, error, blocked = state.cursor, 0, 0, None, False
        for line in page.lines:
            text = line.text.lstrip()
            if line.stream == "stdout" and text.startswith(OUTPUT_PREFIX):
                if room <= 0:
                    blocked = True
                    break
                problem = self._start_target(workspace, trigger, consumer, line.id, text[len(OUTPUT_PREFIX) :])
                if problem is None:
                    delivered, room = delivered + 1, room - 1
                else:
                    refused, error = refused + 1, problem
            cursor = line.id
        if cursor != state.cursor:
            self._note(workspace, trigger.name, cursor=cursor, last_error=error, counts=(delivered, refused))
        return not blocked and not page.more

    def _start_target(self, workspace: str, trigger: Trigger, consumer: RunState, line_id: str, raw: str) -> str | None:
        """Start the target run of one OUTPUT line; why not, if it starts nothing."""
        run_id = uuid.uuid5(uuid.NAMESPACE_URL, f"strom-event:{consumer.id}:{line_id}").hex[:16]
        inputs, problem = parse_event(raw)
        if inputs is None:
            return f"line {line_id} of run {consumer.id}: {problem}"
        event = {"kind": "event_source", "trigger": trigger.name, "source_run": consumer.id, "line": line_id}
        try:
            # False when it exists: started before the cursor was saved (a scheduler died in between), not again
            self._run(workspace, trigger, trigger.target_task or "", inputs, event, run_id)
        except StromError as exc:
            return f"line {line_id} of run {consumer.id}: {exc}"
        except (RecursionError, ValueError, TypeError) as exc:  # inputs no check foresaw: refused, not a stuck queue
            log.exception("event source %s/%s: line %s of run %s", workspace, trigger.name, line_id, consumer.id)
            return f"line {line_id} of run {consumer.id}: its inputs could not be used ({type(exc).__name__})"
        self.redis.sadd(keys.event_source_runs(workspace, trigger.name), run_id)
        return None

    def _in_flight(self, workspace: str, name: str) -> int:
        key = keys.event_source_runs(workspace, name)
        ids = sorted(cast("set[str]", self.redis.smembers(key)))
        if not ids:
            return 0
        states = {s.id: s for s in self.service.runs.load_many(ids)}
        done = [i for i in ids if i not in states or states[i].status.terminal]
        if done:
            self.redis.srem(key, *done)
        return len(ids) - len(done)

    # ----------------------------------------------------------------- bookkeeping
    def _note(
        self,
        workspace: str,
        name: str,
        *,
        cursor: str | None = None,
        last_error: str | None = None,
        stopped: str | None = None,
        counts: tuple[int, int] = (0, 0),
    ) -> None:
        key = keys.event_source(workspace, name)
        with self.redis.pipeline() as pipe:
            if cursor is not None:
                pipe.hset(key, "cursor", cursor)
            if last_error is not None:
                pipe.hset(key, "last_error", last_error[:500])
            if stopped is not None:
                pipe.hset(key, "stopped", stopped[:500])
            if counts[0]:
                pipe.hincrby(key, "delivered", counts[0])
            if counts[1]:
                pipe.hincrby(key, "refused", counts[1])
            pipe.execute()

    def _forget(self, workspace: str, name: str) -> None:
        state = SourceState.load(self.redis, workspace, name)
        consumer = self.service.runs.load(state.run) if state.run else None
        if consumer is not None and not consumer.status.terminal:
            self._stop(consumer, f"event source trigger {name!r} is gone from the workspace's definitions")
        with self.redis.pipeline() as pipe:
            pipe.delete(keys.event_source(workspace, name), keys.event_source_runs(workspace, name))
            pipe.srem(keys.EVENT_SOURCES, f"{workspace}{SOURCE_SEP}{name}")
            pipe.execute()
        log.info("event source %s/%s forgotten: its trigger is gone", workspace, name)


def parse_event(raw: str) -> tuple[dict[str, Any] | None, str | None]:
    """The inputs an OUTPUT line's text gives its target run, or why it gives none."""
    try:
        value = json.loads(raw)
    except ValueError as exc:
        return None, f"OUTPUT is not JSON ({str(exc)[:200]})"
    except RecursionError:
        return None, "OUTPUT is nested too deeply"
    if not isinstance(value, dict):
        return None, f"OUTPUT must be a JSON object (the target's inputs), not {type(value).__name__}"
    return value, None


def _no_restart(trigger: Trigger, consumer: RunState) -> str | None:
    """Why the ended consumer is not started again, if it is not."""
    if trigger.restart_policy is RestartPolicy.NEVER:
        return f"the consumer run ended ({consumer.status.value}); restart_policy: never"
    if trigger.restart_policy is RestartPolicy.ON_FAILURE and consumer.status is RunStatus.SUCCEEDED:
        return "the consumer run succeeded; restart_policy: on_failure"
    return None
