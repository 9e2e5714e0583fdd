"""Child runs: a step whose action is a task starts one and waits for it (ChildFinished: reports.py)."""

from __future__ import annotations

from .commands import StartChild
from .draft import Draft
from .render import ChildPlan, child_job_id
from .state import StepRun
from .status import StepStatus

__all__ = ["MAX_DEPTH", "start_child"]

MAX_DEPTH = 10  # how deep runs may nest

S = StepStatus


def start_child(d: Draft, run: StepRun, attempt: int, plan: ChildPlan) -> None:
    depth = d.old.depth + 1
    if depth > MAX_DEPTH:
        d.set(run.name, attempt=attempt)
        d.fail(d.steps[run.name], f"task {plan.task!r} would nest {depth} runs deep; the limit is {MAX_DEPTH}")
        return
    child = child_job_id(d.old.id, run.name, attempt)
    d.set(run.name, status=S.RUNNING, attempt=attempt, child_job=child, started_at=d.now)
    d.mark_started()
    d.commands.append(StartChild(d.old.id, run.name, child, plan.task, plan.inputs, depth, plan.workspace))
