"""for_each steps: a placeholder run expands into one run per item, started together or in order."""

from __future__ import annotations

import json
from typing import Any

from ..errors import TemplateError
from ..spec.model import Step
from ..templating import evaluate, render_value
from .attempts import start
from .draft import Draft
from .render import step_context
from .state import StepRun, instance_name
from .status import StepStatus

__all__ = ["MAX_FOR_EACH", "progress_loop", "start_loop"]

MAX_FOR_EACH = 10_000

S = StepStatus


def start_loop(d: Draft, step: Step, run: StepRun) -> None:
    """Expand a ready for_each step over its items (skipped if there are none, failed if they are bad)."""
    items = _items(d, step, run)
    if items is None:
        return
    if not items:
        d.skip(run, "for_each gave an empty list")
        return
    d.set(run.name, status=S.RUNNING, items=tuple(items), started_at=d.now)
    for index, item in enumerate(items):
        name = instance_name(step.name, index)
        d.steps[name] = StepRun(name=name, step=step.name, index=index, item=item)
    progress_loop(d, step, d.steps[run.name])


def _items(d: Draft, step: Step, run: StepRun) -> list[Any] | None:
    """The rendered for_each list, or None after failing the step."""
    where = d.where(step, "for_each")
    try:
        context = step_context(d.view(), d.ctx, run)
        value = (
            render_value(step.for_each, context, where)
            if isinstance(step.for_each, list)
            else evaluate(step.for_each, context, where)
        )
    except TemplateError as exc:
        d.fail(run, str(exc))
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if not isinstance(value, list):
        d.fail(run, f"for_each must give a list, got {type(value).__name__}: {str(value)[:80]!r}")
        return None
    if len(value) > MAX_FOR_EACH:
        d.fail(run, f"for_each gave {len(value)} items; the limit is {MAX_FOR_EACH}")
        return None
    return value


def progress_loop(d: Draft, step: Step, placeholder: StepRun) -> None:
    """Start the items that may go now; once all have ended, end the placeholder with their outputs."""
    names = [instance_name(step.name, i) for i in range(len(placeholder.items or ()))]
    if step.sequential:
        _next_in_order(d, step, names)
    elif not d.job.cancel_requested:
        for name in names:
            if d.steps[name].status is S.PENDING:
                start(d, step, d.steps[name])
    runs = [d.steps[name] for name in names]
    if all(r.status.terminal for r in runs):
        _roll_up(d, placeholder, runs)


def _next_in_order(d: Draft, step: Step, names: list[str]) -> None:
    """Start the first unfinished item of a sequential loop; after a failure, skip the rest instead."""
    while True:
        runs = [d.steps[name] for name in names]
        nxt = next((r for r in runs if not r.status.terminal), None)
        if nxt is None:
            return
        if any(r.status.failed for r in runs) and not step.continue_on_failure:
            pending = [r for r in runs if r.status is S.PENDING]
            for r in pending:
                d.skip(r, "an earlier item failed", blocked=True)
            if pending:
                continue
            return  # the item still running ends the loop when it ends
        if nxt.status is S.PENDING and not d.job.cancel_requested:
            start(d, step, nxt)
            continue
        return


def _roll_up(d: Draft, placeholder: StepRun, runs: list[StepRun]) -> None:
    outputs = [r.output if r.status is S.SUCCEEDED else None for r in runs]
    failed = [r for r in runs if r.status in (S.FAILED, S.TIMED_OUT)]
    cancelled = [r for r in runs if r.status is S.CANCELLED]
    if failed:
        detail = "; ".join(f"[{r.index}] {r.error or r.status.value}" for r in failed[:3])
        d.set(
            placeholder.name,
            status=S.FAILED,
            output=outputs,
            finished_at=d.now,
            error=f"{len(failed)} of {len(runs)} items failed: {detail}",
        )
    elif cancelled:
        d.set(placeholder.name, status=S.CANCELLED, output=outputs, finished_at=d.now, error=cancelled[0].error)
    else:
        d.set(placeholder.name, status=S.SUCCEEDED, output=outputs, finished_at=d.now)
