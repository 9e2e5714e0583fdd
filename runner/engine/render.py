"""Turn a ready step into what runs: rendered work, a child run, or an approval request."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..errors import InputError
from ..masking import secret_leaves
from ..spec.inputs import resolve_inputs
from ..spec.model import ABSENT, Action, InputField, Step
from ..spec.payloads import (
    AgentPayload,
    ApprovalPayload,
    ContainerPayload,
    HttpPayload,
    NotifyPayload,
    Payload,
    ScriptPayload,
    TaskPayload,
)
from ..templating import Namespace, render, render_value
from ..tera_compat import display
from .context import RunContext, connection_problems, job_context, secret_values, with_connections
from .runs import HOOK_TASK_PREFIX
from .state import RunState, StepRun
from .status import StepStatus
from .work import StepWork

__all__ = ["ApprovalPlan", "ChildPlan", "child_job_id", "render_step", "step_context"]


@dataclass(frozen=True)
class ChildPlan:
    task: str
    inputs: Mapping[str, Any]
    workspace: str | None = None  # another workspace's (a cross-workspace action); None: the run's own


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

    def render_default(field: InputField, source: str) -> Any:
        return render_value(source, context, where(f"input.{field.name}", action))

    if step.action_ref is None:
        merged = {**state.inputs, **step_inputs}
        if action.input:  # inputs an inline step declared as schemas: their defaults and types apply
            given = {k: merged[k] for k in action.input if k in merged}
            merged.update(
                resolve_inputs(
                    action.input, given, task=f"step {step.name}", render_default=render_default, from_templates=True
                )
            )
        return merged
    if not action.input:
        return step_inputs
    return resolve_inputs(
        action.input, step_inputs, task=f"action {step.action_ref}", render_default=render_default, from_templates=True
    )


def _env(state: RunState, run: StepRun, attempt: int) -> dict[str, str]:
    env = {
        "CI": "true",
        "STROM": "true",
        "STROM_JOB_ID": state.id,
        "STROM_TASK": state.task,
        "STROM_STEP": run.name,
        "STROM_ATTEMPT": str(attempt),
        "STROM_WORKSPACE_NAME": state.workspace,
        # Strøm's names for the same, so its scripts run unchanged
        "STROEM_JOB_ID": state.id,
        "STROEM_TASK_NAME": state.task,
        "STROEM_STEP_NAME": run.name,
        "STROEM_WORKSPACE": state.workspace,
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
    if isinstance(action.payload, TaskPayload):
        if action.payload.workspace is not None:  # `owner.action`: one step running it there, with these inputs
            return ChildPlan(f"{HOOK_TASK_PREFIX}{action.payload.action}", step_inputs, action.payload.workspace)
        child_inputs = action_inputs if step.action_ref is not None and action.input else step_inputs
        if action.payload.pattern is not None:  # one instance per matching task: each gets the inputs it declares
            called = ctx.workspace.tasks.get(str(run.item))
            if called is None:
                raise InputError(str(run.item), {"task": f"task {run.item!r} does not exist"})
            return ChildPlan(task=called.name, inputs={k: v for k, v in child_inputs.items() if k in called.input})
        assert action.payload.task is not None  # the loader requires `task` or `pattern` of a task action
        return ChildPlan(task=action.payload.task, inputs=child_inputs)
    actx = dict(context)
    schema = {**ctx.task.input, **action.input} if step.action_ref is None else action.input
    problems = connection_problems(schema, action_inputs, ctx.workspace)
    if problems:
        raise InputError(f"step {run.name}", problems)
    actx["input"] = Namespace("input", with_connections(schema, action_inputs, ctx))
    if isinstance(action.payload, ApprovalPayload):
        gate = action.payload
        default = f"Approve step {run.name!r} of task {state.task!r}?"
        message = render(gate.message, actx, where("message", action)) if gate.message else default
        return ApprovalPlan(message=message, approvers=gate.approvers, required=gate.required_approvals)
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
    env = _env(state, run, attempt)
    for key, value in action_inputs.items():
        env[_input_variable(key)] = display(value)
    for key, value in action.env.items():
        env[key] = render(value, actx, where(f"env.{key}", action))
    task_schema = ctx.task.input
    mask = (
        secret_leaves(ctx.secrets.values())
        + secret_values(task_schema, state.inputs)
        + secret_values(action.input, action_inputs)
    )
    workdir = render(action.workdir, actx, where("workdir", action)) if action.workdir else action.workdir
    renderer = _Renderer(actx, where, action)
    return StepWork(
        job_id=state.id,
        step=run.name,
        attempt=attempt,
        kind=action.type.value,
        task=state.task,
        workspace=state.workspace,
        ability=action.ability,
        tags=step.effective_tags,
        timeout=step.effective_timeout,
        env=env,
        mask=tuple(dict.fromkeys(m for m in mask if m)),
        event=state.event,
        commit=state.commit,
        snapshot=state.snapshot,
        untrusted=not state.trusted,
        network=state.trusted or ctx.untrusted_network,
        api=ctx.task.api,
        workdir=workdir,
        resources=action.resources,
        state_files=_state_files(state),
        answer=_answer(run),
        payload=_with_mcp_servers(_rendered(action, renderer), ctx, renderer),
    )


def _with_mcp_servers(payload: Payload | None, ctx: RunContext, r: _Renderer) -> Payload | None:
    """An agent step's payload with the MCP servers its `tools` name, their templates rendered (secrets too)."""
    if not isinstance(payload, AgentPayload):
        return payload
    names = [tool["mcp"] for tool in payload.tools if "mcp" in tool]
    if not names:
        return payload
    servers = {}
    for name in names:
        spec = ctx.workspace.mcp_servers.get(name)
        if spec is None:
            raise InputError(f"MCP server {name!r}", {"mcp": "not in the workspace's `mcp_servers`"})
        servers[name] = r.mapping(f"mcp_servers.{name}", spec)
    return replace(payload, mcp_servers=servers)


def _answer(run: StepRun) -> str | None:
    """The answer to the question the step asked, when this attempt goes on after it."""
    approval = run.approval or {}
    return approval.get("answer") if run.status is StepStatus.WAITING and approval.get("question") else None


def _state_files(state: RunState) -> str | None:
    """The files of the task state the step starts from: those of the newest state the run wrote ("" when it had
    none), else None: the task's newest, looked up by the worker when the step starts."""
    if state.task_state is None:
        return None
    return state.task_state.get("files") or ""


class _Renderer:
    """Renders the templates of an action's payload fields, each error naming the field's place."""

    def __init__(self, context: Mapping[str, Any], where: _Where, action: Action):
        self.context, self.where, self.action = context, where, action

    def text(self, field: str, value: str | None) -> str | None:
        return render(value, self.context, self.where(field, self.action)) if isinstance(value, str) else value

    def texts(self, field: str, values: tuple[Any, ...] | None) -> tuple[str, ...] | None:
        if values is None:
            return None
        return tuple(
            render(str(v), self.context, self.where(f"{field}[{i}]", self.action)) for i, v in enumerate(values)
        )

    def value(self, field: str, value: Any) -> Any:
        """A JSON value (ABSENT stays ABSENT)."""
        return value if value is ABSENT else render_value(value, self.context, self.where(field, self.action))

    def mapping(self, field: str, value: Mapping[str, Any] | None) -> Any:
        return None if value is None else render_value(dict(value), self.context, self.where(field, self.action))


def _rendered(action: Action, r: _Renderer) -> Payload:
    """The action's payload with its templates rendered."""
    p = action.payload
    if isinstance(p, ScriptPayload):
        return replace(
            p,
            script=p.script if p.literal else r.text("script", p.script),
            source=r.text("source", p.source),
            args=r.texts("args", p.args) or (),
            image=r.text("image", p.image),
            manifest=r.mapping("manifest", p.manifest),
        )
    if isinstance(p, ContainerPayload):
        return replace(
            p,
            image=r.text("image", p.image),
            cmd=r.text("cmd", p.cmd),
            entrypoint=r.texts("entrypoint", p.entrypoint),
            command=r.texts("command", p.command),
            manifest=r.mapping("manifest", p.manifest),
        )
    if isinstance(p, HttpPayload):
        return replace(
            p,
            url=r.text("url", p.url),
            headers={k: r.text(f"headers.{k}", v) for k, v in p.headers.items()},
            body=r.text("body", p.body),
            json_body=r.value("json", p.json_body),
        )
    if isinstance(p, NotifyPayload):
        return replace(p, title=r.text("title", p.title), message=r.text("message", p.message))
    if isinstance(p, AgentPayload):
        return replace(
            p,
            prompt=r.text("prompt", p.prompt),
            system_prompt=r.text("system_prompt", p.system_prompt),
            output_schema=action.output,
        )
    return p
