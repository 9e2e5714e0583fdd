"""Turn a ready step into what runs: rendered work, a child run, or an approval request."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..spec.inputs import resolve_inputs
from ..spec.model import ABSENT, Action, ActionType, InputField, Step
from ..templating import Namespace, render, render_value
from ..tera_compat import display
from .context import RunContext, job_context, secret_values
from .state import RunState, StepRun
from .work import StepWork

__all__ = ["ApprovalPlan", "ChildPlan", "child_job_id", "render_step", "step_context"]


@dataclass(frozen=True)
class ChildPlan:
    task: str
    inputs: Mapping[str, Any]


@dataclass(frozen=True)
class ApprovalPlan:
    message: str
    approvers: tuple[str, ...]
    required: int


def child_job_id(parent: str, step: str, attempt: int) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"strom:{parent}:{step}:{attempt}").hex[:16]


def step_context(state: RunState, ctx: RunContext, run: StepRun) -> dict[str, Any]:
    context = job_context(state, ctx)
    if run.is_instance:
        placeholder = state.steps[run.step]
        context["each"] = Namespace(
            "each", {"item": run.item, "index": run.index, "total": len(placeholder.items or ())}
        )
    return context


class _Where:
    def __init__(self, state: RunState, step: Step, run: StepRun):
        self.task, self.step, self.run = state.task, step, run

    def __call__(self, field: str, action: Action | None = None) -> str:
        root = field.split("[")[0]
        loc = self.step.field_locations.get(field) or self.step.field_locations.get(root)
        if loc is None and action is not None:
            loc = action.field_locations.get(field) or action.field_locations.get(root)
        loc = loc or (action.location if action is not None else self.step.location)
        return f"{loc} (task {self.task!r}, step {self.run.name!r}, field {field!r})"


def _input_variable(name: str) -> str:
    """The environment variable that carries input `name` to a step: INPUT_<NAME>."""
    return "INPUT_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _render_inputs(step: Step, context: Mapping[str, Any], where: _Where) -> dict[str, Any]:
    return {key: render_value(value, context, where(f"input.{key}")) for key, value in step.input.items()}


def _action_inputs(
    state: RunState, ctx: RunContext, step: Step, step_inputs: dict[str, Any], context: Mapping[str, Any], where: _Where
) -> dict[str, Any]:
    action = step.action
    if step.action_ref is None:
        return {**state.inputs, **step_inputs}
    if not action.input:
        return step_inputs

    def render_default(field: InputField, source: str) -> Any:
        return render_value(source, context, where(f"input.{field.name}", action))

    return resolve_inputs(action.input, step_inputs, task=f"action {step.action_ref}", render_default=render_default)


def _env(state: RunState, run: StepRun, attempt: int) -> dict[str, str]:
    env = {
        "CI": "true",
        "STROM": "true",
        "STROM_JOB_ID": state.id,
        "STROM_TASK": state.task,
        "STROM_STEP": run.name,
        "STROM_ATTEMPT": str(attempt),
        "STROM_WORKSPACE_NAME": state.workspace,
    }
    git = state.git or {}
    for key, var in (
        ("sha", "STROM_SHA"),
        ("short_sha", "STROM_SHORT_SHA"),
        ("ref", "STROM_REF"),
        ("branch", "STROM_BRANCH"),
        ("tag", "STROM_TAG"),
    ):
        if git.get(key):
            env[var] = str(git[key])
    pr = (state.event or {}).get("pr") or {}
    if pr.get("number"):
        env["STROM_PR"] = str(pr["number"])
    if run.is_instance:
        env["STROM_EACH_INDEX"] = str(run.index)
    return env


def render_step(
    state: RunState, ctx: RunContext, step: Step, run: StepRun, attempt: int
) -> StepWork | ChildPlan | ApprovalPlan:
    """StepWork, ChildPlan or ApprovalPlan for `run`. Raises TemplateError or InputError."""
    where = _Where(state, step, run)
    context = step_context(state, ctx, run)
    step_inputs = _render_inputs(step, context, where)
    action = step.action
    action_inputs = _action_inputs(state, ctx, step, step_inputs, context, where)
    if action.type is ActionType.TASK:
        child_inputs = action_inputs if step.action_ref is not None and action.input else step_inputs
        assert action.task is not None  # the loader requires it of a task action
        return ChildPlan(task=action.task, inputs=child_inputs)
    actx = dict(context)
    actx["input"] = Namespace("input", action_inputs)
    if action.type is ActionType.APPROVAL:
        default = f"Approve step {run.name!r} of task {state.task!r}?"
        message = render(action.message, actx, where("message", action)) if action.message else default
        return ApprovalPlan(message=message, approvers=action.approvers, required=action.required_approvals)
    return _work(state, ctx, step, run, attempt, action, actx, action_inputs, where)


def _work(
    state: RunState,
    ctx: RunContext,
    step: Step,
    run: StepRun,
    attempt: int,
    action: Action,
    actx: dict[str, Any],
    action_inputs: dict[str, Any],
    where: _Where,
) -> StepWork:
    def r(field: str) -> Any:
        value = getattr(action, field)
        return render(value, actx, where(field, action)) if isinstance(value, str) else value

    def r_list(field: str) -> tuple[str, ...] | None:
        value = getattr(action, field)
        if value is None:
            return None
        return tuple(render(str(v), actx, where(f"{field}[{i}]", action)) for i, v in enumerate(value))

    env = _env(state, run, attempt)
    for key, value in action_inputs.items():
        env[_input_variable(key)] = display(value)
    for key, value in action.env.items():
        env[key] = render(value, actx, where(f"env.{key}", action))
    task_schema = ctx.task.input
    mask = (
        list(ctx.secrets.values())
        + secret_values(task_schema, state.inputs)
        + secret_values(action.input, action_inputs)
    )
    work: dict[str, Any] = {
        "job_id": state.id,
        "step": run.name,
        "attempt": attempt,
        "kind": action.type.value,
        "task": state.task,
        "workspace": state.workspace,
        "ability": action.ability,
        "tags": step.effective_tags,
        "timeout": step.effective_timeout,
        "env": env,
        "mask": tuple(dict.fromkeys(m for m in mask if m)),
        "event": state.event,
        "commit": state.commit,
        "snapshot": state.snapshot,
        "untrusted": not state.trusted,
        "network": state.trusted or ctx.untrusted_network,
    }
    kind = action.type
    if kind is ActionType.SCRIPT:
        work.update(
            script=action.script if action.script_literal else r("script"),
            source=r("source"),
            language=action.language.value,
            interpreter=action.interpreter,
            dependencies=action.dependencies,
            args=r_list("args") or (),
            runner=action.runner.value,
            workdir=r("workdir"),
            image=r("image"),
            manifest=_render_mapping(action.manifest, actx, where("manifest", action)),
            resources=action.resources,
        )
    elif kind in (ActionType.DOCKER, ActionType.POD):
        work.update(
            image=r("image"),
            cmd=r("cmd"),
            entrypoint=r_list("entrypoint"),
            command=r_list("command"),
            workdir=r("workdir"),
            resources=action.resources,
            manifest=_render_mapping(action.manifest, actx, where("manifest", action)),
        )
    elif kind is ActionType.HTTP:
        headers = {k: render(v, actx, where(f"headers.{k}", action)) for k, v in action.headers.items()}
        has_json = action.json_body is not ABSENT
        work.update(
            url=r("url"),
            method=action.method.value,
            headers=headers,
            body=r("body"),
            json_body=render_value(action.json_body, actx, where("json", action)) if has_json else None,
            has_json=has_json,
            expected_status=action.expected_status,
        )
    elif kind is ActionType.NOTIFY:
        work.update(channels=action.channels, title=r("title"), message=r("message"))
    elif kind is ActionType.AGENT:
        work.update(
            provider=action.provider,
            prompt=r("prompt"),
            system_prompt=r("system_prompt"),
            model=action.model,
            max_tokens=action.max_tokens,
            temperature=action.temperature,
            output_schema=action.output,
        )
    return StepWork(**work)


def _render_mapping(value: Mapping[str, Any] | None, context: Mapping[str, Any], where: str) -> Any:
    if value is None:
        return None
    return render_value(dict(value), context, where)
