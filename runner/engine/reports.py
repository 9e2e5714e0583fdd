"""Reports on a step's attempt: its worker started, finished or abandoned it, or its child run finished.

transitions.py has already checked that each report is about the step's current attempt or child run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..errors import EngineError
from ..outputs import cap_summary
from .attempts import end_attempt, start
from .commands import KeepState
from .draft import Draft
from .events import ChildFinished, StepAbandoned, StepFinished, StepStarted
from .state import StepRun
from .status import RunStatus, StepStatus

__all__ = ["MAX_HAND_BACKS", "on_abandoned", "on_child_finished", "on_finished", "on_started"]

MAX_HAND_BACKS = 5  # hand-backs not counted as tries; one more counts as a failed try

S = StepStatus
FINAL = (S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.CANCELLED)  # what a worker may report a step ended as


def on_started(d: Draft, run: StepRun, event: StepStarted) -> None:
    timeout = d.step_of(run).effective_timeout
    d.set(
        run.name, status=S.RUNNING, started_at=d.now, worker=event.worker, deadline=d.now + timeout if timeout else None
    )
    d.mark_started()


def on_finished(d: Draft, run: StepRun, event: StepFinished) -> None:
    if event.status not in FINAL:
        raise EngineError(f"a step cannot finish as {event.status.value}")
    d.mark_started()
    error = event.error
    if event.status is S.FAILED and not error:
        error = f"exit code {event.exit_code}" if event.exit_code is not None else "failed"
    summary = cap_summary(d.mask(event.summary))
    if event.status is S.SUCCEEDED and event.state and d.job.trusted:
        _keep_state(d, run, event.state)
    end_attempt(
        d, run, event.status, output=event.output, error=d.mask(error), exit_code=event.exit_code, summary=summary
    )
    if event.status is S.SUCCEEDED and event.artifacts:
        d.set(run.name, artifacts=[dict(a) for a in event.artifacts if isinstance(a, dict)])


def _keep_state(d: Draft, run: StepRun, reported: Mapping[str, Any]) -> None:
    """The step wrote task state: the run's later steps start from it, and its task keeps it."""
    data, files = reported.get("data"), reported.get("files")
    snapshot = {
        "id": str(reported.get("id") or f"{d.job.id}-{run.name}-{run.attempt}"),
        "job": d.job.id,
        "step": run.name,
        "created": d.now,
        "data": data if isinstance(data, dict) else None,
        "files": files if isinstance(files, str) else None,
        "size": reported.get("size") if isinstance(reported.get("size"), int) else 0,
    }
    d.job = replace(d.job, task_state=snapshot)
    d.commands.append(KeepState(d.job.workspace, d.job.task, snapshot))


def on_abandoned(d: Draft, run: StepRun, event: StepAbandoned) -> None:
    if event.handed_back:
        _handed_back(d, run, event)
    elif event.retry:
        end_attempt(d, run, S.FAILED, error=d.mask(event.error))
    else:
        d.set(
            run.name,
            status=S.FAILED,
            error=d.mask(event.error),
            finished_at=d.now,
            started_at=run.started_at or d.now,
            deadline=None,
        )


def _handed_back(d: Draft, run: StepRun, event: StepAbandoned) -> None:
    """Its worker stopped it while shutting down: run it again, without counting a try (up to a limit)."""
    if d.job.cancel_requested:
        end_attempt(d, run, S.CANCELLED, error=d.mask(event.error))
    elif run.handed_back < MAX_HAND_BACKS:
        d.set(run.name, handed_back=run.handed_back + 1, error=d.mask(event.error))
        start(d, d.step_of(run), d.steps[run.name])
    else:
        end_attempt(d, run, S.FAILED, error=d.mask(f"{event.error} ({MAX_HAND_BACKS} times)"))


def on_child_finished(d: Draft, run: StepRun, event: ChildFinished) -> None:
    if event.status is RunStatus.SUCCEEDED:
        end_attempt(d, run, S.SUCCEEDED, output=event.output)
    elif event.status is RunStatus.CANCELLED:
        end_attempt(d, run, S.CANCELLED, error=f"child run {event.child_job} was cancelled")
    else:
        detail = f": {event.error}" if event.error else ""
        end_attempt(d, run, S.FAILED, error=d.mask(f"child run {event.child_job} {event.status.value}{detail}"))
