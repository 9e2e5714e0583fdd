"""What the rows of transitions.py are made of: a StepRule, and what a step event must be about."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from ..errors import EngineError
from .draft import Draft
from .events import ApprovalDecision, ChildFinished, StepAbandoned, StepAsked, StepFinished, StepStarted
from .state import StepRun
from .status import StepStatus

__all__ = ["About", "Approval", "Attempt", "ChildRun", "StepEvent", "StepRule", "WorkerAttempt"]


class StepEvent(Protocol):
    @property
    def step(self) -> str: ...


E = TypeVar("E", bound=StepEvent)
E_contra = TypeVar("E_contra", bound=StepEvent, contravariant=True)
AttemptReport = StepStarted | StepFinished | StepAbandoned | StepAsked


class About(Protocol[E_contra]):
    """What an event about a step must refer to, and how it is refused."""

    def holds(self, run: StepRun, event: E_contra) -> bool: ...

    def refusal(self, run: StepRun, event: E_contra) -> str: ...


class StepRule(Generic[E]):
    """An event about one step: legal while the step is in `step_in` and the event is `about` it."""

    def __init__(
        self, handler: Callable[[Draft, StepRun, E], None], step_in: Iterable[StepStatus], about: About[E]
    ) -> None:
        self.handler = handler
        self.step_in = frozenset(step_in)
        self.about = about

    def apply(self, d: Draft, event: E) -> None:
        run = d.run(event.step)
        if run.status not in self.step_in or not self.about.holds(run, event):
            raise EngineError(self.about.refusal(run, event))
        self.handler(d, run, event)


@dataclass(frozen=True)
class Attempt:
    """The step's current attempt."""

    refused: str  # what the step cannot do otherwise, e.g. "cannot start"

    def holds(self, run: StepRun, event: AttemptReport) -> bool:
        return event.attempt == run.attempt

    def refusal(self, run: StepRun, event: AttemptReport) -> str:
        return (
            f"step {run.name!r} attempt {event.attempt} {self.refused}: it is {run.status.value} "
            f"(attempt {run.attempt})"
        )


class WorkerAttempt(Attempt):
    """The step's current attempt, run by a worker (a child run's end comes as ChildFinished)."""

    def holds(self, run: StepRun, event: AttemptReport) -> bool:
        return super().holds(run, event) and not run.child_job


class ChildRun:
    """The child run the step is waiting for."""

    def holds(self, run: StepRun, event: ChildFinished) -> bool:
        return run.child_job == event.child_job

    def refusal(self, run: StepRun, event: ChildFinished) -> str:
        return f"step {run.name!r} is not waiting for child run {event.child_job}"


class Approval:
    """The step's open approval gate (a step has at most one)."""

    def holds(self, run: StepRun, event: ApprovalDecision) -> bool:
        return True

    def refusal(self, run: StepRun, event: ApprovalDecision) -> str:
        return f"step {run.name!r} is not waiting for approval (it is {run.status.value})"
