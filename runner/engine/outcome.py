"""The run's own status after every event: live (queued, running, waiting) until all its steps have ended,
then final, with its output, a task-level retry or its hooks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .commands import RetryRun, RunFinished
from .draft import Draft
from .hooks import event_for_status, hooks_for
from .retry import retry_delay
from .state import RunState, StepRun, instance_name
from .status import RunStatus, StepStatus, check_job

__all__ = ["conclude"]

S = StepStatus
J = RunStatus


def conclude(d: Draft) -> None:
    top = [r for r in d.steps.values() if not r.is_instance]
    started = d.job.begun or d.job.cancel_requested
    if started and all(r.status.terminal for r in top):
        _finish(d, top)
    else:
        _set_status(d, _live_status(d))


def _live_status(d: Draft) -> RunStatus:
    work = [r for r in d.steps.values() if not r.is_placeholder]
    active = any(r.status in (S.QUEUED, S.RUNNING) for r in work)
    if any(r.status is S.WAITING for r in work) and not active:
        return J.WAITING
    if d.job.started_at is not None:
        return J.RUNNING
    return J.QUEUED


def _set_status(d: Draft, status: RunStatus) -> None:
    current = d.job.status
    if status is not current:
        check_job(d.old.id, current, status)
        d.job = replace(d.job, status=status)


def _finish(d: Draft, top: list[StepRun]) -> None:
    bad = [r for r in top if r.status.failed and not d.tolerated(r)]
    status = _final_status(d, bad)
    error = _final_error(d, status, bad)
    _set_status(d, status)
    d.job = replace(d.job, finished_at=d.now, output=_output(d), error=d.mask(error))
    d.steps = _ordered(d)
    final = d.view()
    d.commands.append(RunFinished(final.id, status, final.parent_job, final.parent_step, final.output, final.error))
    _retry_or_hooks(d, final, status)


def _final_status(d: Draft, bad: list[StepRun]) -> RunStatus:
    if d.job.timed_out:
        return J.TIMED_OUT
    if d.job.cancel_requested:
        return J.CANCELLED
    return J.FAILED if bad else J.SUCCEEDED


def _final_error(d: Draft, status: RunStatus, bad: list[StepRun]) -> str | None:
    if status is J.FAILED:
        return "; ".join(f"step {r.name} {r.status.value}: {r.error or ''}".rstrip(": ") for r in bad[:5])
    if status in (J.CANCELLED, J.TIMED_OUT):
        return d.job.cancel_reason
    return None


def _retry_or_hooks(d: Draft, final: RunState, status: RunStatus) -> None:
    """A failed run is retried if its task says so; otherwise its hooks for `status` run."""
    retry = d.task.retry
    if (
        status in (J.FAILED, J.TIMED_OUT)
        and retry is not None
        and not final.is_hook
        and final.attempt < retry.max_attempts
    ):
        delay = retry_delay(retry, final.attempt, seed=final.id)
        d.commands.append(RetryRun(final.id, final.attempt + 1, d.now + delay))
        return
    event = event_for_status(status)
    hooks = hooks_for(final, d.ctx, event, d.masker) if event else None
    if hooks:
        d.commands.append(hooks)


def _output(d: Draft) -> Any:
    """The output of the only final step, or a mapping of each final step to its output."""
    leaves = d.task.leaves
    if len(leaves) == 1:
        return d.steps[leaves[0]].output
    return {name: d.steps[name].output for name in leaves if d.steps[name].output is not None} or None


def _ordered(d: Draft) -> dict[str, StepRun]:
    """The steps in flow order, each for_each placeholder followed by its items."""
    out: dict[str, StepRun] = {}
    for name in d.task.order:
        run = d.steps[name]
        out[name] = run
        for index in range(len(run.items or ())):
            key = instance_name(name, index)
            out[key] = d.steps[key]
    return out
