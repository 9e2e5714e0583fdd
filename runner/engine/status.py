"""Step and job statuses, and every transition between them (the only place that lists them)."""

from __future__ import annotations

from enum import Enum

from ..errors import EngineError

__all__ = ["RUN_TRANSITIONS", "STEP_TRANSITIONS", "RunStatus", "StepStatus", "check_job", "check_step"]


class StepStatus(str, Enum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def terminal(self) -> bool:
        return self in _STEP_TERMINAL

    @property
    def failed(self) -> bool:
        """Ended badly (a failure, a timeout or a cancellation)."""
        return self in (StepStatus.FAILED, StepStatus.TIMED_OUT, StepStatus.CANCELLED)


class RunStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"

    @property
    def terminal(self) -> bool:
        return self in _JOB_TERMINAL


_STEP_TERMINAL = frozenset(
    {StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.TIMED_OUT, StepStatus.CANCELLED, StepStatus.SKIPPED}
)
_JOB_TERMINAL = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT, RunStatus.SKIPPED}
)

S = StepStatus
STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    # pending: dispatched, waiting for a human, expanded/child started, or decided without running
    S.PENDING: frozenset({S.QUEUED, S.WAITING, S.RUNNING, S.SKIPPED, S.FAILED, S.CANCELLED}),
    # queued: a worker starts it, or reports an end without a start report, or it is cancelled
    S.QUEUED: frozenset({S.RUNNING, S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.CANCELLED}),
    # running: ends, goes back to queued for a retry, or waits for the answer to a question it asked
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.CANCELLED, S.QUEUED, S.WAITING}),
    # waiting: decided, or answered (queued again, to go on with the answer)
    S.WAITING: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED, S.QUEUED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.TIMED_OUT: frozenset(),
    S.CANCELLED: frozenset(),
    S.SKIPPED: frozenset(),
}

J = RunStatus
RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    J.QUEUED: frozenset({J.RUNNING, J.WAITING, J.SUCCEEDED, J.FAILED, J.CANCELLED, J.TIMED_OUT, J.SKIPPED}),
    J.RUNNING: frozenset({J.WAITING, J.SUCCEEDED, J.FAILED, J.CANCELLED, J.TIMED_OUT}),
    J.WAITING: frozenset({J.RUNNING, J.SUCCEEDED, J.FAILED, J.CANCELLED, J.TIMED_OUT}),
    J.SUCCEEDED: frozenset(),
    J.FAILED: frozenset(),
    J.CANCELLED: frozenset(),
    J.TIMED_OUT: frozenset(),
    J.SKIPPED: frozenset(),
}


def check_step(name: str, current: StepStatus, new: StepStatus) -> None:
    if new is not current and new not in STEP_TRANSITIONS[current]:
        raise EngineError(f"step {name!r} cannot go from {current.value} to {new.value}")


def check_job(job_id: str, current: RunStatus, new: RunStatus) -> None:
    if new is not current and new not in RUN_TRANSITIONS[current]:
        raise EngineError(f"run {job_id} cannot go from {current.value} to {new.value}")
