"""The run's own events: Start begins it; Cancel stops it (a second Start or Cancel is refused)."""

from __future__ import annotations

from dataclasses import replace

from ..errors import EngineError
from .commands import CancelChild, CancelStep
from .draft import Draft
from .events import Cancel, Start
from .status import StepStatus

__all__ = ["cancel_all", "on_cancel", "on_start"]

S = StepStatus


def on_start(d: Draft, event: Start) -> None:
    if d.old.begun:
        raise EngineError(f"run {d.old.id} has already started")
    d.job = replace(d.job, begun=True)


def on_cancel(d: Draft, event: Cancel) -> None:
    if d.job.cancel_requested:
        raise EngineError(f"run {d.old.id} is already being cancelled")
    by = f" by {event.by}" if event.by else ""
    d.job = replace(d.job, cancel_requested=True, cancel_reason=f"{event.reason}{by}")
    cancel_all(d, f"{event.reason}{by}")


def cancel_all(d: Draft, reason: str) -> None:
    """End what has not started; ask workers and child runs to stop what has (they report back)."""
    for run in list(d.steps.values()):
        if run.status in (S.PENDING, S.WAITING):
            d.set(run.name, status=S.CANCELLED, error=reason, finished_at=d.now)
        elif run.status is S.QUEUED:
            d.set(run.name, status=S.CANCELLED, error=reason, finished_at=d.now)
            d.commands.append(CancelStep(d.old.id, run.name, run.attempt))
        elif run.status is S.RUNNING and run.child_job:
            d.commands.append(CancelChild(run.child_job))
        elif run.status is S.RUNNING and not run.is_placeholder:
            d.commands.append(CancelStep(d.old.id, run.name, run.attempt))
