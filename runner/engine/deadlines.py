"""Time: Tick enforces the deadlines (the run's timeout, approval timeouts, lost steps); wake_at says when."""

from __future__ import annotations

from dataclasses import replace

from ..durations import format_duration
from .approvals import QUESTION_TIMEOUT
from .attempts import end_attempt
from .commands import CancelStep
from .draft import Draft
from .events import Tick
from .lifecycle import cancel_all
from .state import RunState, StepRun
from .status import StepStatus

__all__ = ["LOST_GRACE", "on_tick", "wake_at"]

LOST_GRACE = 30.0  # after a running step's deadline, how long the engine waits for its worker's report

S = StepStatus


def on_tick(d: Draft, event: Tick) -> None:
    _time_out_run(d)
    for run in list(d.steps.values()):
        if run.deadline is not None and not run.status.terminal:
            _time_out_step(d, run, run.deadline)


def _time_out_run(d: Draft) -> None:
    deadline = d.job.deadline
    if deadline is not None and d.now >= deadline and not d.job.timed_out:
        limit = format_duration(d.task.timeout) if d.task.timeout else "its limit"
        d.job = replace(d.job, timed_out=True, cancel_requested=True, cancel_reason=f"run timed out after {limit}")
        cancel_all(d, f"run timed out after {limit}")


def _time_out_step(d: Draft, run: StepRun, deadline: float) -> None:
    if run.status is S.WAITING and d.now >= deadline:
        if (run.approval or {}).get("question"):
            error = f"no answer to the question within {QUESTION_TIMEOUT / 3600:g} hours"
        else:
            error = f"approval timed out after {format_duration(d.step_of(run).action.timeout)}"
        d.set(run.name, status=S.FAILED, finished_at=d.now, error=error)
    elif run.status is S.RUNNING and not run.child_job and d.now >= deadline + LOST_GRACE:
        limit = format_duration(d.step_of(run).effective_timeout)
        d.commands.append(CancelStep(d.old.id, run.name, run.attempt))
        end_attempt(d, run, S.TIMED_OUT, error=f"step timed out after {limit} (its worker did not stop it)")


def wake_at(state: RunState) -> float | None:
    """When the next deadline falls (the time to send Tick), or None."""
    if state.status.terminal:
        return None
    times = []
    if state.deadline is not None and not state.timed_out:
        times.append(state.deadline)
    for run in state.steps.values():
        if run.deadline is None or run.status.terminal:
            continue
        if run.status is S.WAITING:
            times.append(run.deadline)
        elif run.status is S.RUNNING and not run.child_job:
            times.append(run.deadline + LOST_GRACE)
    return min(times) if times else None
