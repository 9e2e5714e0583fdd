"""Apply events to runs stored in Redis: read, decide (the pure engine), write atomically, retry on conflict.

Two processes finishing sibling steps of one run at the same instant both read the run; Redis
WATCH lets only one write win, and the other re-reads and decides again, so no promotion is lost
and no step starts twice.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from redis.exceptions import WatchError

from ..engine import Decision, RunState, advance
from ..engine.events import ApprovalDecision, Event, Start, StepFinished
from ..errors import EngineError, StromError
from ..store import keys
from ..store.logs import STROM
from .effects import followed, notifies, reported_by_effects, stage_effects, stage_report

if TYPE_CHECKING:
    from .service import Service

__all__ = ["Conflict", "Orchestrator", "RunNotFound"]

MAX_CONFLICTS = 200
log = logging.getLogger("strom.orchestrator")


class RunNotFound(StromError):
    status_hint = 404


class Conflict(StromError):
    status_hint = 409


class Orchestrator:
    def __init__(self, service: Service):
        self.service = service
        self.redis = service.redis

    def apply(self, job_id: str, event: Event, now: float | None = None) -> Decision:
        """Apply `event` to run `job_id`. Raises RunNotFound, or EngineError if the event is illegal now."""
        for _ in range(MAX_CONFLICTS):
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(keys.job(job_id))
                    state = self.service.runs.load(job_id, client=pipe)
                    if state is None:
                        raise RunNotFound(f"no run {job_id}")
                    ctx = self.service.contexts.for_state(state)
                    at = time.time() if now is None else now
                    decision = advance(state, event, ctx, at)
                    pipe.multi()
                    self.service.runs.stage(pipe, state, decision.state, at)
                    self.service.logs.stage_transitions(pipe, state, decision.state, at)
                    self._stage_effects(pipe, decision, at, ctx)
                    if _changes_report(state, decision, event):
                        stage_report(pipe, decision.state)
                    pipe.execute()
                    return decision
                except WatchError:
                    continue
        raise Conflict(f"run {job_id} kept changing under {MAX_CONFLICTS} attempts to apply {type(event).__name__}")

    def _stage_effects(self, pipe, decision: Decision, at: float, ctx) -> None:
        states = self.service.task_states
        stage_effects(pipe, self.redis, decision, at, followed(ctx), notifies(decision.state, ctx), states)

    def create(self, state: RunState, ctx, now: float | None = None) -> Decision:
        """Store a new run and start it, in one transaction. An existing run with this id is left alone."""
        at = time.time() if now is None else now
        with self.redis.pipeline() as pipe:
            pipe.watch(keys.job(state.id))
            if pipe.exists(keys.job(state.id)):
                pipe.reset()
                raise Conflict(f"run {state.id} already exists")
            decision = advance(state, Start(), ctx, at)
            pipe.multi()
            self.service.runs.stage(pipe, None, decision.state, at)
            self.service.logs.stage_transitions(pipe, None, decision.state, at)
            self._stage_effects(pipe, decision, at, ctx)
            if not reported_by_effects(decision):
                stage_report(pipe, decision.state)
            try:
                pipe.execute()
            except WatchError:
                raise Conflict(f"run {state.id} already exists") from None
        return decision

    def try_apply(self, job_id: str, event: Event, now: float | None = None) -> Decision | None:
        """Apply, treating a stale or repeated event (EngineError) or a deleted run as nothing to do.

        A step's report for an attempt that was superseded meanwhile (declared lost and retried) is
        noted in the run's log: it is recorded, and changes nothing."""
        try:
            return self.apply(job_id, event, now)
        except RunNotFound:
            return None
        except EngineError as exc:
            # Expected of at-least-once delivery (a report sent again after an outage, a timer that raced a
            # step's end), and worth a line: one that repeats for a run points at a bug.
            log.info("run %s: %s changes nothing and is dropped: %s", job_id, type(event).__name__, exc)
            if isinstance(event, StepFinished):
                self._note_late(job_id, event, now)
            return None

    def _note_late(self, job_id: str, event: StepFinished, now: float | None) -> None:
        state = self.service.runs.load(job_id)
        run = state.steps.get(event.step) if state is not None else None
        if run is None or run.attempt == event.attempt:
            return  # a repeated report of the attempt the run already recorded
        text = (
            f"[strom] attempt {event.attempt} reported {event.status.value} after it had been superseded "
            f"(the step is at attempt {run.attempt}, {run.status.value}); the report changes nothing"
        )
        self.service.logs.append(
            job_id, [(event.step, event.attempt, STROM, text, time.time() if now is None else now)]
        )


def _changes_report(old: RunState, decision: Decision, event: Event) -> bool:
    """Whether the forge should hear of a decision on a gate (the run goes on, or counts one more
    approval) beyond what the effects already report (waits and finishes)."""
    return isinstance(event, ApprovalDecision) and not reported_by_effects(decision)
