"""Creating runs: validated inputs, initial step states, and the small tasks hooks run as."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from ..errors import InputError
from ..spec.inputs import resolve_inputs
from ..spec.model import InputField, Step, Task, Workspace
from ..templating import Namespace, render_value
from .commands import HookCall
from .context import RunContext, connection_problems
from .state import RunState, StepRun

__all__ = ["HOOK_TASK_PREFIX", "hook_task", "new_run", "new_run_id"]

HOOK_TASK_PREFIX = "_hook:"


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def new_run(
    ctx: RunContext,
    *,
    inputs: Mapping[str, Any],
    now: float,
    job_id: str | None = None,
    workspace: str = "local",
    source: str = "manual",
    trigger: str | None = None,
    event: Mapping[str, Any] | None = None,
    git: Mapping[str, Any] | None = None,
    commit: str | None = None,
    depth: int = 0,
    parent_job: str | None = None,
    parent_step: str | None = None,
    attempt: int = 1,
    retry_of: str | None = None,
    allow_extra_inputs: bool = False,
    from_templates: bool = False,
) -> RunState:
    """A queued run of `ctx.task`. Raises InputError listing every bad or missing input."""
    task = ctx.task
    default_context = {
        "secret": ctx.secrets,
        "secrets": ctx.secrets,
        "event": Namespace("event", event or {}),
        "git": Namespace("git", git or {}),
    }

    def render_default(field: InputField, source_text: str) -> Any:
        return render_value(source_text, default_context, f"{field.location} (default of input {field.name!r})")

    values = resolve_inputs(
        task.input,
        inputs,
        task=task.name,
        render_default=render_default,
        allow_extra=allow_extra_inputs,
        from_templates=from_templates,
    )
    problems = connection_problems(task.input, values, ctx.workspace)
    if problems:
        raise InputError(task.name, problems)
    return RunState(
        id=job_id or new_run_id(),
        workspace=workspace,
        task=task.name,
        created_at=now,
        inputs=values,
        steps={name: StepRun(name=name, step=name) for name in task.order},
        deadline=now + task.timeout if task.timeout else None,
        depth=depth,
        parent_job=parent_job,
        parent_step=parent_step,
        source=source,
        trigger=trigger,
        event=dict(event) if event else None,
        git=dict(git) if git else None,
        commit=commit,
        attempt=attempt,
        retry_of=retry_of,
    )


def hook_task(call: HookCall, workspace: Workspace) -> Task:
    """The task a hook runs: the referenced task for a task action, else one step running the action."""
    if call.action.called_task is not None:  # the loader requires it of a task action
        return workspace.tasks[call.action.called_task]
    # Inputs arrive rendered; each is passed on by reference so it is never rendered twice.
    step_input = {key: f"{{{{ input[{key!r}] }}}}" for key in call.inputs}
    step = Step(
        name=call.action_ref,
        action=call.action,
        location=call.action.location,
        action_ref=call.action_ref,
        input=step_input,
        input_given=True,
    )
    return Task(
        name=f"{HOOK_TASK_PREFIX}{call.action_ref}",
        location=call.action.location,
        flow={step.name: step},
        order=(step.name,),
    )
