"""Carry out the engine's commands inside the same Redis transaction as the state they come with.

Everything a decision causes is written atomically with the new state: RQ jobs for steps, delayed
dispatches, cancel flags, and messages for other runs (child creation, parent notification, hooks).
A crash can therefore never leave a run that moved on without its effects, or effects without the
state that explains them. Work for other runs is applied later, idempotently, by the orchestrator.
"""

from __future__ import annotations

import json
from typing import Any

from ..engine import (
    AwaitApproval,
    CancelChild,
    CancelStep,
    ChildFinished,
    DispatchStep,
    KeepState,
    RetryRun,
    RunFinished,
    RunHooks,
    StartChild,
)
from ..engine.core import Decision
from ..engine.events import Cancel
from ..engine.work import StepWork
from ..notify.notifier import rules_for, stage_notification
from ..spec.model import NotifyEvent, TriggerType
from ..store import keys
from ..store.queues import STEP_FUNCTION, queue_name, rq_job_id, rq_queue
from ..store.task_states import TaskStates
from . import messages
from .messages import MessageKind, ReportKind

__all__ = ["CANCEL_TTL", "enqueue_step", "followed", "notifies", "reported_by_effects", "stage_effects", "stage_report"]

CANCEL_TTL = 86400
REPORTED_KINDS = frozenset({"push", "tag", "pull_request", "comment"})


def reported_by_effects(decision: Decision) -> bool:
    """Whether stage_effects already asks for a report of this decision (a finish or a wait)."""
    return any(isinstance(c, (AwaitApproval, RunFinished)) for c in decision.commands)


def stage_report(pipe, state) -> None:
    """Ask the reporter to tell the forge about a run of a repository event (a no-op without a forge)."""
    event = state.event or {}
    kind = event.get("origin") if event.get("kind") == "job" else event.get("kind")  # job triggers: their origin
    if not state.parent_job and not state.is_hook and kind in REPORTED_KINDS:
        pipe.rpush(
            keys.REPORTS, messages.encode({"kind": ReportKind.RUN, "job": state.id, "status": state.status.value})
        )


def enqueue_step(pipe, redis, work: StepWork, now: float) -> str:
    """Put `work` on its RQ queue (inside `pipe`) and record it as queued; returns the queue name."""
    name = queue_name(work.ability, work.tags)
    rq_queue(name, redis).enqueue_call(
        STEP_FUNCTION,
        args=(work.to_dict(),),
        job_id=rq_job_id(work.job_id, work.step, work.attempt),
        timeout=-1,
        result_ttl=0,
        failure_ttl=3600,
        description=f"{work.task}/{work.step} of run {work.job_id}",
        pipeline=pipe,
    )
    pipe.hset(
        keys.QUEUED, keys.step_key(work.job_id, work.step, work.attempt), json.dumps({"queue": name, "since": now})
    )
    return name


def notifies(state, ctx) -> bool:
    """Whether notification rules of the run's task (or workspace) may want to hear of it."""
    return bool(rules_for(state, ctx))


def followed(ctx) -> bool:
    """Whether a `job` trigger of the run's definitions waits for its task to finish."""
    task = ctx.task.name
    return any(t.type is TriggerType.JOB and t.enabled and task in t.after for t in ctx.workspace.triggers.values())


def stage_effects(
    pipe,
    redis,
    decision: Decision,
    now: float,
    followed: bool = False,
    notifies: bool = False,
    states: TaskStates | None = None,
) -> None:
    """`followed`: a job trigger waits for this run, so its finish is announced. `notifies`: the run
    has notification rules, so its finish (its last attempt) and its gates are announced to them. `states`:
    where task state a step wrote is kept."""
    state = decision.state
    retrying = any(isinstance(c, RetryRun) for c in decision.commands)
    for command in decision.commands:
        if isinstance(command, DispatchStep):
            if command.not_before and command.not_before > now:
                payload: dict[str, Any] = {"kind": MessageKind.DISPATCH, "work": command.work.to_dict()}
                pipe.zadd(keys.DELAYED, {messages.encode(payload): command.not_before})
            else:
                enqueue_step(pipe, redis, command.work, now)
        elif isinstance(command, CancelStep):
            flag = keys.cancel_flag(command.job_id, command.step, command.attempt)
            pipe.set(flag, "1", ex=CANCEL_TTL)
            pipe.publish(keys.CANCEL_CHANNEL, keys.step_key(command.job_id, command.step, command.attempt))
        elif isinstance(command, StartChild):
            pipe.rpush(keys.EVENTS, messages.encode(messages.create_child_message(command)))
        elif isinstance(command, CancelChild):
            message = messages.event_message(command.child_job, Cancel("parent run cancelled"))
            pipe.rpush(keys.EVENTS, messages.encode(message))
        elif isinstance(command, RunHooks):
            pipe.rpush(keys.EVENTS, messages.encode(messages.hooks_message(command)))
        elif isinstance(command, RunFinished):
            if command.parent_job:
                if command.parent_step is None:  # the engine gives every child run the step that started it
                    raise ValueError(f"child run {command.job_id} names no step of its parent")
                event = ChildFinished(
                    command.parent_step, command.job_id, command.status, command.output, command.error
                )
                pipe.rpush(keys.EVENTS, messages.encode(messages.event_message(command.parent_job, event)))
            elif not state.is_hook:
                if followed and not retrying:
                    pipe.rpush(keys.EVENTS, messages.encode({"kind": MessageKind.RUN_FINISHED, "job": state.id}))
                if notifies and not retrying:
                    stage_notification(pipe, redis, state, NotifyEvent(command.status.value))
                stage_report(pipe, state)
        elif isinstance(command, RetryRun):
            payload = {"kind": MessageKind.RETRY, "job": command.job_id, "attempt": command.attempt}
            pipe.zadd(keys.DELAYED, {messages.encode(payload): command.not_before})
        elif isinstance(command, KeepState):
            if states is None:
                raise ValueError(f"run {state.id} wrote task state, and nothing keeps it here")
            states.stage_keep(pipe, command.workspace, command.task, dict(command.snapshot))
        elif isinstance(command, AwaitApproval):
            stage_report(pipe, state)  # "waiting for approval" on the forge
            if notifies:
                stage_notification(pipe, redis, state, NotifyEvent.WAITING, command.step)
    if state.status.terminal or decision.wake_at is None:
        pipe.zrem(keys.WAKE, state.id)
    else:
        pipe.zadd(keys.WAKE, {state.id: decision.wake_at})
