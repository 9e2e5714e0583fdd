"""After every event: each pending step whose dependencies have ended is skipped, failed, expanded or started."""

from __future__ import annotations

from ..errors import TemplateError
from ..spec.model import Step
from ..templating import render
from .attempts import start
from .draft import Draft
from .loops import progress_loop, start_loop
from .render import step_context
from .state import StepRun
from .status import StepStatus
from .truth import is_truthy

__all__ = ["settle"]

S = StepStatus


def settle(d: Draft) -> None:
    if not d.job.begun:
        return
    for name in d.task.order:
        step = d.task.flow[name]
        run = d.steps[name]
        if run.status is S.PENDING and not d.job.cancel_requested:
            deps = [d.steps[dep] for dep in step.depends_on]
            if all(dep.status.terminal for dep in deps):
                _ready(d, step, run, deps)
        run = d.steps[name]
        if run.is_placeholder and run.status is S.RUNNING:
            progress_loop(d, step, run)


def _ready(d: Draft, step: Step, run: StepRun, deps: list[StepRun]) -> None:
    if _skipped_for_dependencies(d, step, run, deps) or not _when_holds(d, step, run):
        return
    if step.for_each is not None:
        start_loop(d, step, run)
    else:
        start(d, step, run)


def _skipped_for_dependencies(d: Draft, step: Step, run: StepRun, deps: list[StepRun]) -> bool:
    """Skip the step if a dependency failed (unless it may continue) or every dependency it names was skipped.

    The previous stage's steps (`stage_after`) count for failures, not for "every one was skipped".
    """
    bad = [
        dep for dep in deps if (dep.status.failed and not d.tolerated(dep)) or (dep.status is S.SKIPPED and dep.blocked)
    ]
    if bad and not step.continue_on_failure:
        d.skip(
            run,
            "dependency "
            + ", ".join(
                f"{dep.name} {'was skipped after a failure' if dep.status is S.SKIPPED else dep.status.value}"
                for dep in bad
            ),
            blocked=True,
        )
        return True
    named = [dep for dep in deps if dep.name not in step.stage_after]
    if named and not bad and all(dep.status is S.SKIPPED for dep in named):
        d.skip(run, "all dependencies were skipped")
        return True
    return False


def _when_holds(d: Draft, step: Step, run: StepRun) -> bool:
    """True if the step has no `when` or it renders true; else the step is skipped (or failed, if it cannot render)."""
    if step.when is None:
        return True
    try:
        text = render(step.when, step_context(d.view(), d.ctx, run), d.where(step, "when"))
    except TemplateError as exc:
        d.fail(run, str(exc))
        return False
    if not is_truthy(text):
        d.skip(run, f"condition is false: {step.when.strip()}")
        return False
    return True
