"""What the engine asks its shell (CLI runner, RQ service) to do. Shells only move data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..spec.model import Action
from .status import RunStatus
from .work import StepWork

__all__ = [
    "AwaitApproval",
    "CancelChild",
    "CancelStep",
    "Command",
    "DispatchStep",
    "HookCall",
    "KeepState",
    "RetryRun",
    "RunFinished",
    "RunHooks",
    "StartChild",
]


class Command:
    """Base of all commands."""


@dataclass(frozen=True)
class DispatchStep(Command):
    """Run `work` (on a worker, or server-side for http/notify/agent) no earlier than `not_before`."""

    work: StepWork
    not_before: float | None = None


@dataclass(frozen=True)
class CancelStep(Command):
    job_id: str
    step: str
    attempt: int


@dataclass(frozen=True)
class StartChild(Command):
    """Create and start a child run of `task`; report its end as ChildFinished to the parent."""

    job_id: str
    step: str
    child_job: str
    task: str
    inputs: Mapping[str, Any]
    depth: int
    workspace: str | None = None  # where the child runs, when not in the parent's workspace


@dataclass(frozen=True)
class CancelChild(Command):
    child_job: str


@dataclass(frozen=True)
class AwaitApproval(Command):
    job_id: str
    step: str
    message: str
    approvers: tuple[str, ...]
    required: int
    deadline: float | None


@dataclass(frozen=True)
class HookCall:
    action_ref: str
    action: Action
    inputs: Mapping[str, Any]
    error: str | None = None  # the hook's input could not be rendered; nothing to run


@dataclass(frozen=True)
class RunHooks(Command):
    job_id: str
    event: str  # on_success | on_error | on_cancel | on_suspended
    calls: tuple[HookCall, ...]
    context: Mapping[str, Any]


@dataclass(frozen=True)
class RunFinished(Command):
    job_id: str
    status: RunStatus
    parent_job: str | None
    parent_step: str | None
    output: Any
    error: str | None


@dataclass(frozen=True)
class KeepState(Command):
    """A step wrote task state: keep `snapshot` as the newest of its task's (see runner/store/task_states.py)."""

    workspace: str
    task: str
    snapshot: Mapping[str, Any]


@dataclass(frozen=True)
class RetryRun(Command):
    """Start a new run of the same task with the same inputs and commit (task-level retry)."""

    job_id: str
    attempt: int
    not_before: float
