"""A Draft: one event's work on a run, before it becomes the new state.

It holds the run as it was, the changes made so far and the commands to send. Handlers change it
only through `set` (which checks each step transition) and by replacing `job`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..errors import EngineError
from ..spec.model import Step, Task
from .commands import Command
from .context import RunContext, run_masker
from .runs import HOOK_TASK_PREFIX
from .state import RunState, StepRun
from .status import StepStatus, check_step

__all__ = ["Draft"]

S = StepStatus


class Draft:
    def __init__(self, state: RunState, ctx: RunContext, now: float) -> None:
        if ctx.task.name != state.task and not state.task.startswith(HOOK_TASK_PREFIX):
            raise EngineError(f"run {state.id} is of task {state.task!r}, not {ctx.task.name!r}")
        self.old = state
        self.job = state  # the run's own fields as changed so far; its steps are in `steps`
        self.steps: dict[str, StepRun] = dict(state.steps)
        self.ctx = ctx
        self.task: Task = ctx.task
        self.now = now
        self.commands: list[Command] = []
        self.masker = run_masker(state, ctx)

    def view(self) -> RunState:
        """The run as it stands now."""
        return replace(self.job, steps=self.steps)

    def run(self, name: str) -> StepRun:
        try:
            return self.steps[name]
        except KeyError:
            raise EngineError(f"run {self.old.id} has no step {name!r}") from None

    def set(self, name: str, **changes: Any) -> StepRun:
        """Change step `name`; raises EngineError if its status cannot go where `changes` say."""
        run = self.steps[name]
        if "status" in changes:
            check_step(name, run.status, changes["status"])
        self.steps[name] = new = replace(run, **changes)
        return new

    def mark_started(self) -> None:
        """The run has started: now, unless it already had."""
        if self.job.started_at is None:
            self.job = replace(self.job, started_at=self.now)

    def fail(self, run: StepRun, error: str) -> None:
        self.set(run.name, status=S.FAILED, error=self.mask(error), finished_at=self.now)

    def skip(self, run: StepRun, reason: str, blocked: bool = False) -> None:
        """Skip by choice (a false `when`, nothing to loop over) or, `blocked`, because of a failure upstream."""
        self.set(run.name, status=S.SKIPPED, skip_reason=reason, blocked=blocked, finished_at=self.now)

    def tolerated(self, run: StepRun) -> bool:
        """Failed, but its step has continue_on_failure."""
        return run.status in (S.FAILED, S.TIMED_OUT) and self.step_of(run).continue_on_failure

    def step_of(self, run: StepRun) -> Step:
        return self.task.flow[run.step]

    def where(self, step: Step, field: str) -> str:
        """Where a step's field is written, for error messages."""
        location = step.field_locations.get(field, step.location)
        return f"{location} (task {self.task.name!r}, step {step.name!r}, field {field!r})"

    def mask(self, text: str | None) -> str | None:
        return self.masker.mask(text) if text else text
