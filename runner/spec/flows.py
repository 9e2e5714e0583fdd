"""Build tasks: their steps (named or inline actions), the dependency graph, and hooks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..suggestions import suggest
from ..templating import template_name
from .actions import MAX_STEP_TIMEOUT, build_action
from .context import BuildContext
from .fields import ACTION_FIELDS, HOOK_EVENTS, HOOK_FIELDS, STEP_FIELDS, TASK_FIELDS
from .graph import find_cycle, topological_order
from .inputs_schema import build_input_schema
from .model import ABSENT, Action, ActionType, Hook, Hooks, Location, Step, Task
from .names import RESERVED_TEMPLATE_NAMES, name_problem
from .notify_rules import build_notify_rules
from .payloads import TaskPayload
from .reader import Explain, Reader, describe, location
from .retry import build_retry
from .stages import Stages, read_stages
from .yamlnodes import LocDict, LocList, YamlValue

__all__ = ["MAX_FOR_EACH", "MAX_TASK_TIMEOUT", "build_hooks", "build_task"]

MAX_TASK_TIMEOUT = 7 * 86400.0
MAX_FOR_EACH = 10_000


def build_task(data: LocDict, name: str, ctx: BuildContext, actions: dict[str, Action]) -> Task | None:
    what = f"task {name!r}"
    r = Reader(data, ctx.problems, what)
    r.check_keys(TASK_FIELDS)
    flow_data, stages = _flow_or_stages(r)
    if flow_data is None:
        return None
    steps: dict[str, Step] = {}
    for step_name, step_data in flow_data.items():
        step = _build_step(flow_data, step_name, step_data, name, ctx, actions)
        if step is not None:
            steps[step_name] = step
    _check_dependencies(flow_data, steps, what, ctx, stages)
    if stages is not None:
        for step_name, stage_steps in stages.disabled.items():  # checked like the others, never run
            _build_step(stage_steps, step_name, stage_steps[step_name], name, ctx, actions)
        steps = _in_stages(steps, stages)
    _check_template_names(flow_data, steps, what, ctx)
    order = _order(flow_data, steps, what, ctx)
    if order is None:
        return None
    return Task(
        name=name,
        location=location(data.pos),
        flow=steps,
        order=tuple(order),
        label=r.string("name"),
        description=r.string("description"),
        mode=r.string("mode"),
        folder=r.string("folder"),
        input=build_input_schema(
            r.mapping("input", "{ env: { type: string } }"), ctx.problems, what, ctx.connection_types
        ),
        timeout=r.duration("timeout", MAX_TASK_TIMEOUT, "7d"),
        retry=build_retry(r),
        hooks=build_hooks(data, ctx, actions, what),
        notify=build_notify_rules(data, "notify", ctx, what),
        stages=stages.names if stages is not None else (),
        api=r.boolean("api"),
    )


def _flow_or_stages(r: Reader) -> tuple[LocDict | None, Stages | None]:
    """The steps as one flow, and the stages they were written in (None for a task written with `flow:`)."""
    if r.has("flow") and r.has("stages"):
        r.error(
            "stages",
            "conflict",
            "a task has either `flow:` or `stages:`, not both",
            "move the steps of `flow:` into a stage",
            on_key=True,
        )
        return None, None
    if r.has("stages") and r.raw("stages") is not None:
        items = r.raw("stages")
        if not isinstance(items, LocList) or not items:
            r.error(
                "stages",
                "wrong-type",
                f"`stages` must be a list of stages, got {describe(items) if items != [] else 'an empty list'}",
                "write it like `stages: [{ name: build, steps: { compile: { type: script, script: make } } }]`",
            )
            return None, None
        stages = read_stages(items, r.problems, r.what)
        if not stages.flow:
            if stages.stage_of:
                r.error("stages", "missing-field", "every stage is disabled", "enable at least one stage")
            return None, None
        return stages.flow, stages
    if not r.require(
        "flow", "add `flow:` with at least one step, e.g. `flow: { hello: { type: script, script: echo hi } }`"
    ):
        return None, None
    flow_data = r.mapping("flow", "{ build: { action: build-app } }")
    if flow_data is not None and not flow_data:
        r.error("flow", "missing-field", "`flow` has no steps", "add at least one step")
        return None, None
    return flow_data, None


def _in_stages(steps: dict[str, Step], stages: Stages) -> dict[str, Step]:
    """Each step with its stage, and waiting for every step of the previous enabled stage."""
    members: dict[str, list[str]] = {}
    for step_name in stages.flow:
        members.setdefault(stages.stage_of[step_name], []).append(step_name)
    out = {}
    for step_name, step in steps.items():
        stage = stages.stage_of[step_name]
        index = stages.names.index(stage)
        before = tuple(s for s in members[stages.names[index - 1]] if s in steps) if index else ()
        named = tuple(dep for dep in step.depends_on if not _stage_problem(step_name, dep, stages))  # others reported
        after = tuple(s for s in before if s not in named)
        out[step_name] = replace(step, stage=stage, depends_on=named + after, stage_after=after)
    return out


def _build_step(
    flow: LocDict, step_name: str, data: YamlValue, task_name: str, ctx: BuildContext, actions: dict[str, Action]
) -> Step | None:
    what = f"task {task_name!r}, step {step_name!r}"
    problem = name_problem(step_name, "step")
    if problem:
        ctx.problems.error(
            flow.key_at(step_name), "bad-name", f"task {task_name!r}: {problem}", "rename the step, e.g. build-app"
        )
        return None
    if not isinstance(data, LocDict):
        ctx.problems.error(
            flow.at(step_name),
            "wrong-type",
            f"{what}: a step must be a mapping, got {describe(data)}",
            f"write it like `{step_name}: {{ action: <action name> }}`",
        )
        return None
    r = Reader(data, ctx.problems, what)
    if r.has("action") and r.has("type"):
        r.error(
            "type",
            "conflict",
            "a step either references an action (`action:`) or defines one inline (`type:`), not both",
            "remove `type:` and the action fields, or remove `action:`",
            on_key=True,
        )
        return None
    action_ref: str | None
    if r.has("action"):
        action_ref = r.string("action", "build-app")
        r.check_keys(STEP_FIELDS, _explain_step_field(action_ref))
        action = actions.get(action_ref) if action_ref else None
        if action is None and action_ref is not None and action_ref.split(".", 1)[0] in ctx.workspaces:
            action = _elsewhere(action_ref, r.at("action"))
        if action_ref is not None and action is None:
            known = sorted(actions) or ["(none defined)"]
            hint = suggest(action_ref, actions)
            fix = f"define it under `actions:` or write the step inline with `type:`; actions: {', '.join(known[:15])}"
            if "." in action_ref:
                library = action_ref.split(".", 1)[0]
                fix = (
                    f"if {library!r} is a library, list it under `libraries:` in strom.yaml (the server's, or one "
                    f"next to .strom/ for `strom validate` and `strom run`) and check that it defines "
                    f"{action_ref.split('.', 1)[1]!r}; if it is another workspace of the server, list it under "
                    "`workspaces:` there; " + fix
                )
            r.error(
                "action",
                "unknown-action",
                f"action {action_ref!r} does not exist" + (f"; {hint}" if hint else ""),
                fix,
            )
        if action is None:
            return None
    elif r.has("type"):
        action_ref = None
        action = build_action(data, f"{task_name}.{step_name}", ctx, what, inline=True)
        if action is None:
            return None
    else:
        r.error(
            None,
            "missing-field",
            "a step needs `action: <name>` or an inline action (`type: script`, ...)",
            'add `action: <action name>` or `type: script` with `script: "echo hi"`',
        )
        return None
    return _step_from(r, step_name, action, action_ref, task_name, ctx)


def _elsewhere(action_ref: str, at: tuple[str, int, int]) -> Action:
    """A step naming another workspace's action (`owner.action`): it runs there, as a one-step child run with the
    step's inputs, in the owner's files, secrets and definitions (the owner checks the inputs when it starts)."""
    owner, name = action_ref.split(".", 1)
    return Action(
        name=action_ref,
        type=ActionType.TASK,
        location=Location(*at),
        payload=TaskPayload(workspace=owner, action=name),
    )


def _explain_step_field(action_ref: str | None) -> Explain:
    def explain(key: str) -> tuple[str, str] | None:
        if key in ACTION_FIELDS:
            return (
                f"field {key!r} belongs to the action, not to a step that references action {action_ref!r}",
                f"set it on action {action_ref!r}, or write this step inline with `type:` instead of `action:`",
            )
        return None

    return explain


def _step_from(
    r: Reader, step_name: str, action: Action, action_ref: str | None, task_name: str, ctx: BuildContext
) -> Step:
    depends_on = r.string_list("depends_on", "[build]") or ()
    step_input = r.values("input")
    if action_ref is None and action.input:  # entries written as schemas belong to the inline action
        step_input = {k: v for k, v in step_input.items() if k not in action.input}
    when = r.template("when", '"{{ input.deploy }}"')
    for_each = _for_each(r)
    if isinstance(action.payload, TaskPayload) and action.payload.pattern is not None:
        for_each = _pattern_items(r, action.payload, for_each, task_name)
    if r.has("sequential") and for_each is None:
        r.warning("sequential", "no-effect", "`sequential` only matters with `for_each`", "remove it")
    # Inline steps share timeout, retry, tags, name and description with their action, read once there.
    timeout = r.duration("timeout", MAX_STEP_TIMEOUT, "24h") if action_ref is not None else None
    if timeout is not None and action.type is ActionType.TASK:
        r.error(
            "timeout",
            "invalid-field",
            "`timeout` is not valid on a step that runs a task action",
            "set `timeout` on the task it runs instead",
            on_key=True,
        )
    if action.called_task == task_name:
        r.error(
            "action" if action_ref else "task",
            "self-reference",
            f"the step runs task {task_name!r} from inside task {task_name!r}, which would never end",
            "point the task action at a different task",
        )
    if action_ref is not None and action.input:
        _check_step_input(r, step_input, action, action_ref)
    return Step(
        name=step_name,
        action=action,
        location=location(r.data.pos),
        action_ref=action_ref,
        label=r.string("name") if action_ref is not None else action.label,
        description=r.string("description") if action_ref is not None else action.description,
        depends_on=depends_on,
        input=step_input,
        input_given=r.has("input"),
        continue_on_failure=r.boolean("continue_on_failure"),
        timeout=timeout,
        when=when,
        for_each=for_each,
        sequential=r.boolean("sequential"),
        retry=build_retry(r) if action_ref is not None else action.retry,
        tags=(r.string_list("tags", '["gpu"]') or ()) if action_ref is not None else (),
        field_locations=r.locations,
    )


def _pattern_items(r: Reader, payload: TaskPayload, for_each: Any, task_name: str) -> list[str]:
    """A step whose task action has a `pattern` runs as a for_each over the tasks it matches (never its own)."""
    if for_each is not None:
        r.error(
            "for_each",
            "conflict",
            "a step whose action runs a `pattern` of tasks already runs once per task; it cannot have `for_each`",
            "remove `for_each`, or name one task with `task:`",
            on_key=True,
        )
    return [name for name in payload.tasks if name != task_name]


def _check_step_input(r: Reader, step_input: dict[str, Any], action: Action, action_ref: str) -> None:
    for key in step_input:
        if key not in action.input:
            hint = suggest(key, action.input)
            r.problems.error(
                r.data["input"].key_at(key),
                "unknown-input",
                f"{r.what}: action {action_ref!r} has no input {key!r}" + (f"; {hint}" if hint else ""),
                f"its inputs: {', '.join(action.input)}",
            )
    for key, field in action.input.items():
        if field.required and field.default is ABSENT and key not in step_input:
            r.error(
                None,
                "missing-input",
                f"action {action_ref!r} requires input {key!r}",
                f'add it under the step\'s `input:`, e.g. `{key}: "{{{{ input.{key} }}}}"`',
            )


def _for_each(r: Reader) -> list[Any] | str | None:
    """The items written, or a template yielding them."""
    value = r.raw("for_each", None)
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) > MAX_FOR_EACH:
            r.error("for_each", "out-of-range", f"for_each has {len(value)} items; the limit is {MAX_FOR_EACH}")
        r.check_templates_in(value, "for_each")
        return list(value)
    if isinstance(value, str):
        r.check_template(value, r.at("for_each"), "for_each")
        r.locations["for_each"] = location(r.at("for_each"))
        return value
    r.error(
        "for_each",
        "wrong-type",
        f"for_each must be a list or a template yielding one, got {describe(value)}",
        'write it like `for_each: [eu, us]` or `for_each: "{{ fetch.output.items }}"`',
    )
    return None


def _check_dependencies(
    flow: LocDict, steps: dict[str, Step], what: str, ctx: BuildContext, stages: Stages | None = None
) -> None:
    for name, step in steps.items():
        deps_node = flow[name].get("depends_on")
        seen = set()
        for i, dep in enumerate(step.depends_on):
            pos = deps_node.at(i) if isinstance(deps_node, LocList) else flow.at(name)
            if dep == name:
                ctx.problems.error(
                    pos, "cycle", f"{what}, step {name!r}: depends on itself", "remove it from depends_on"
                )
            elif stages is not None and (problem := _stage_problem(name, dep, stages)):
                ctx.problems.error(
                    pos, "stage-order", f"{what}, step {name!r}: {problem}", "remove it from depends_on, or move a step"
                )
            elif dep not in flow:
                hint = suggest(dep, flow)
                ctx.problems.error(
                    pos,
                    "unknown-step",
                    f"{what}, step {name!r}: depends_on names step {dep!r}, which is not in the flow"
                    + (f"; {hint}" if hint else ""),
                    f"steps in this flow: {', '.join(flow)}",
                )
            elif dep in seen:
                ctx.problems.warning(
                    pos, "duplicate", f"{what}, step {name!r}: {dep!r} is listed twice in depends_on", "list it once"
                )
            seen.add(dep)


def _stage_problem(name: str, dep: str, stages: Stages) -> str:
    """Why step `name` may not depend on `dep` of another stage ('' if it may)."""
    dep_stage = stages.stage_of.get(dep)
    if dep_stage is None:
        return ""
    if dep_stage not in stages.names:
        return f"depends_on names step {dep!r} of stage {dep_stage!r}, which is disabled"
    if stages.names.index(dep_stage) > stages.names.index(stages.stage_of[name]):
        return f"depends_on names step {dep!r} of the later stage {dep_stage!r}; stages run one after another"
    return ""


def _check_template_names(flow: LocDict, steps: dict[str, Step], what: str, ctx: BuildContext) -> None:
    by_template_name: dict[str, str] = {}
    for name in steps:
        short = template_name(name)
        if short in RESERVED_TEMPLATE_NAMES:
            ctx.problems.warning(
                flow.key_at(name),
                "reserved-name",
                f"{what}: step {name!r} is referenced in templates as {short!r}, a name the template "
                f"context already uses",
                f"rename the step, or refer to it as steps['{name}']",
            )
        elif short in by_template_name:
            other = by_template_name[short]
            ctx.problems.warning(
                flow.key_at(name),
                "ambiguous-name",
                f"{what}: steps {other!r} and {name!r} are both {short!r} in templates",
                f"rename one, or refer to them as steps['{other}'] and steps['{name}']",
            )
        by_template_name.setdefault(short, name)


def _order(flow: LocDict, steps: dict[str, Step], what: str, ctx: BuildContext) -> list[str] | None:
    deps = {name: [d for d in step.depends_on if d in steps and d != name] for name, step in steps.items()}
    order = topological_order(deps)
    if order is not None:
        return order
    cycle = find_cycle(deps) or list(steps)
    ctx.problems.error(
        flow.key_at(cycle[0]),
        "cycle",
        f"{what}: dependency cycle: {' -> '.join(cycle)}",
        "remove one of these depends_on entries so the steps can run in order",
    )
    return None


def build_hooks(data: LocDict, ctx: BuildContext, actions: dict[str, Action], what: str) -> Hooks:
    built: dict[str, tuple[Hook, ...]] = {}
    for event in HOOK_EVENTS:
        value = data.get(event)
        if value is None:
            built[event] = ()
            continue
        if not isinstance(value, LocList):
            ctx.problems.error(
                data.at(event),
                "wrong-type",
                f"{what}: {event} must be a list of hooks, got {describe(value)}",
                f"write it like `{event}: [{{ action: notify, input: {{ message: done }} }}]`",
            )
            built[event] = ()
            continue
        hooks = []
        for i, item in enumerate(value):
            hook = _build_hook(value, i, item, ctx, actions, f"{what}: {event}[{i}]")
            if hook is not None:
                hooks.append(hook)
        built[event] = tuple(hooks)
    return Hooks(**built)


def _build_hook(
    parent: LocList, index: int, item: YamlValue, ctx: BuildContext, actions: dict[str, Action], what: str
) -> Hook | None:
    if not isinstance(item, LocDict):
        ctx.problems.error(
            parent.at(index),
            "wrong-type",
            f"{what}: a hook must be a mapping, got {describe(item)}",
            "write it like `{ action: notify, input: { message: done } }`",
        )
        return None
    r = Reader(item, ctx.problems, what)
    r.check_keys(HOOK_FIELDS)
    if not r.require("action", "add `action: <name of an action>`"):
        return None
    ref = r.string("action")
    action = actions.get(ref) if ref else None
    if action is None or ref is None:  # (ref is None only when action is too)
        hint = suggest(ref or "", actions)
        r.error(
            "action",
            "unknown-action",
            f"hook action {ref!r} does not exist" + (f"; {hint}" if hint else ""),
            "define it under `actions:`",
        )
        return None
    return Hook(action=action, action_ref=ref, location=location(item.pos), input=r.values("input"))
