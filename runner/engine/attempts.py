"""How one attempt of a step begins (a worker's job, a child run or an approval gate) and ends (or retries)."""

from __future__ import annotations

from typing import Any

from ..errors import InputError, TemplateError
from ..spec.model import Step
from .approvals import open_gate
from .children import start_child
from .commands import DispatchStep
from .draft import Draft
from .render import ApprovalPlan, ChildPlan, render_step
from .retry import retry_delay
from .state import StepRun
from .status import StepStatus

__all__ = ["end_attempt", "start"]

S = StepStatus


def start(d: Draft, step: Step, run: StepRun, not_before: float | None = None) -> None:
    """Begin the next attempt of `run`; a step that cannot be rendered fails."""
    attempt = run.attempt + 1
    try:
        plan = render_step(d.view(), d.ctx, step, run, attempt)
    except (TemplateError, InputError) as exc:
        d.set(run.name, attempt=attempt)
        d.fail(d.steps[run.name], str(exc))
        return
    if isinstance(plan, ChildPlan):
        start_child(d, run, attempt, plan)
    elif isinstance(plan, ApprovalPlan):
        open_gate(d, step, run, attempt, plan)
    else:
        d.set(run.name, status=S.QUEUED, attempt=attempt, queued_at=d.now, deadline=None)
        d.commands.append(DispatchStep(plan, not_before))


def end_attempt(
    d: Draft,
    run: StepRun,
    status: StepStatus,
    *,
    output: Any = None,
    error: str | None = None,
    exit_code: int | None = None,
    summary: str | None = None,
) -> None:
    """Finish one attempt as `status`, or queue the next one if it failed and the retry policy allows."""
    step = d.step_of(run)
    policy = step.effective_retry
    retryable = status in (S.FAILED, S.TIMED_OUT) and not d.job.cancel_requested
    tries = run.attempt - run.handed_back - run.resumed
    if summary is not None:
        d.set(run.name, summary=summary)
    if retryable and tries < policy.max_attempts:
        delay = retry_delay(policy, tries, seed=f"{d.old.id}:{run.name}")
        d.set(run.name, error=error, exit_code=exit_code, retry_at=d.now + delay)
        start(d, step, d.steps[run.name], not_before=d.now + delay if delay else None)
        return
    d.set(
        run.name,
        status=status,
        output=output if status is S.SUCCEEDED else None,
        error=error,
        exit_code=exit_code,
        finished_at=d.now,
        retry_at=None,
        deadline=None,
        started_at=run.started_at or d.now,
    )
