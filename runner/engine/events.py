"""What can happen to a run. The engine answers each with a new state and commands."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .status import RunStatus, StepStatus

__all__ = [
    "EVENT_TYPES",
    "ApprovalDecision",
    "Cancel",
    "ChildFinished",
    "Event",
    "Start",
    "StepAbandoned",
    "StepAsked",
    "StepFinished",
    "StepStarted",
    "Tick",
]


@dataclass(frozen=True)
class Event:
    """Base of all events (each a frozen dataclass)."""


@dataclass(frozen=True)
class Start(Event):
    """Begin the run: evaluate and dispatch the steps that are ready."""


@dataclass(frozen=True)
class StepStarted(Event):
    step: str
    attempt: int
    worker: str | None = None


@dataclass(frozen=True)
class StepFinished(Event):
    step: str
    attempt: int
    status: StepStatus  # succeeded, failed, timed_out or cancelled
    output: Any = None
    error: str | None = None
    exit_code: int | None = None
    summary: str | None = None  # Markdown the step wrote for people, whatever its status
    state: Mapping[str, Any] | None = None  # task state the step wrote: {id, data, files, size}
    artifacts: list[dict[str, Any]] | None = None  # files it left to keep: {name, key, size, content_type}


@dataclass(frozen=True)
class StepAbandoned(Event):
    """No report will come for this attempt: its worker was lost (`retry` allowed) or none can take it; or,
    `handed_back`, its worker stopped it while shutting down: run it again, not counted as a try."""

    step: str
    attempt: int
    error: str
    retry: bool = True
    handed_back: bool = False


@dataclass(frozen=True)
class StepAsked(Event):
    """An interactive agent step asks people a question: it waits, like an approval gate, and its next attempt
    goes on with the answer (runner/executors/agent.py)."""

    step: str
    attempt: int
    question: str


@dataclass(frozen=True)
class ChildFinished(Event):
    step: str
    child_job: str
    status: RunStatus
    output: Any = None
    error: str | None = None


@dataclass(frozen=True)
class ApprovalDecision(Event):
    step: str
    approved: bool
    by: str
    reason: str | None = None
    answer: str | None = None  # to a question an agent step asked (approving it needs one)


@dataclass(frozen=True)
class Cancel(Event):
    reason: str = "cancelled"
    by: str | None = None


@dataclass(frozen=True)
class Tick(Event):
    """Time passed: enforce deadlines (run timeout, approval timeouts, lost steps)."""


EVENT_TYPES = {
    cls.__name__: cls
    for cls in (
        Start,
        StepStarted,
        StepFinished,
        StepAbandoned,
        StepAsked,
        ChildFinished,
        ApprovalDecision,
        Cancel,
        Tick,
    )
}
