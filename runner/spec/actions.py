"""Build `Action`s from their mappings, enforcing which fields each action type accepts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Any

from ..suggestions import suggest
from ..templating import is_template, syntax_problems
from .context import BuildContext
from .fields import ACTION_FIELDS, ACTION_TYPE_FIELDS, LANGUAGE_ALIASES, STEP_FIELDS, types_accepting
from .inputs_schema import build_input_schema, check_output_schema, split_inline_input
from .model import ABSENT, Action, ActionType, HttpMethod, Language, Runner
from .patterns import PatternError, matching_names
from .payloads import (
    AgentPayload,
    ApprovalPayload,
    ContainerPayload,
    HttpPayload,
    NotifyPayload,
    Payload,
    ScriptPayload,
    TaskPayload,
)
from .reader import Explain, Reader, location
from .retry import build_retry
from .yamlnodes import LocDict, LocList

__all__ = ["MAX_STEP_TIMEOUT", "build_action", "misplaced_action_field"]

MAX_STEP_TIMEOUT = 86400.0
MAX_APPROVAL_TIMEOUT = 7 * 86400.0
_EXTENSIONS = {
    ".py": Language.PYTHON,
    ".js": Language.JAVASCRIPT,
    ".mjs": Language.JAVASCRIPT,
    ".cjs": Language.JAVASCRIPT,
    ".ts": Language.TYPESCRIPT,
    ".go": Language.GO,
}
_TYPE_HINTS = {
    "args": "docker and pod actions take `cmd`, `command` or `entrypoint` instead",
    "script": "for a container, use `cmd`; to run a script with the workspace, use type: script with runner: docker",
    "source": "use type: script to run a file from the workspace",
    "image": "use `runner: docker` (or pod) on a script action, or type: docker",
    "cmd": "use `script:` on script actions",
}


def misplaced_action_field(action_type: str) -> Explain:
    """An `explain` callback for Reader.check_keys naming the types a misplaced field belongs to."""

    def explain(key: str) -> tuple[str, str] | None:
        if key not in ACTION_FIELDS:
            return None
        owners = types_accepting(key)
        if not owners:
            return None
        hint = _TYPE_HINTS.get(key, f"remove it, or change the type to {' or '.join(owners)}")
        return (
            f"field {key!r} is not valid for an action of type {action_type!r} "
            f"(it belongs to type {', '.join(owners)})",
            hint,
        )

    return explain


def build_action(data: LocDict, name: str, ctx: BuildContext, what: str, inline: bool = False) -> Action | None:
    """Build an action; `inline` actions share their mapping with step fields (checked by the caller)."""
    r = Reader(data, ctx.problems, what)
    if not r.require("type", "add `type: script` (or docker, pod, task, approval, agent, http, notify)"):
        if not inline:
            r.check_keys(ACTION_FIELDS)
        return None
    kind = r.choice("type", ACTION_TYPE_FIELDS)
    if kind is None:
        return None
    allowed = ACTION_TYPE_FIELDS[kind]
    if inline:
        allowed = allowed | (set(STEP_FIELDS) - {"action"})
    r.check_keys(allowed, misplaced_action_field(kind))
    action_type = ActionType(kind)
    fields: dict[str, Any] = {  # keyword arguments of Action
        "label": r.string("name"),
        "description": r.string("description"),
        "output": check_output_schema(r),
    }
    if not inline:
        fields["input"] = build_input_schema(
            r.mapping("input", "{ env: { type: string } }"), ctx.problems, what, ctx.connection_types
        )
    elif isinstance(data.get("input"), LocDict):  # the entries written as schemas declare the inline action's inputs
        schema, _values = split_inline_input(data["input"])
        fields["input"] = build_input_schema(schema, ctx.problems, what, ctx.connection_types) if schema else {}
    if action_type in (ActionType.SCRIPT, ActionType.DOCKER, ActionType.POD):
        fields.update(_execution_fields(r, ctx))
    payload = _BUILDERS[action_type](r, ctx)
    if action_type is ActionType.APPROVAL:
        fields["timeout"] = r.duration("timeout", MAX_APPROVAL_TIMEOUT, "7d")
    if action_type in (ActionType.AGENT, ActionType.HTTP):
        fields["timeout"] = r.duration("timeout", MAX_STEP_TIMEOUT, "24h")
        fields["retry"] = build_retry(r)
    return Action(
        name=name,
        type=action_type,
        location=location(data.pos),
        payload=payload,
        inline=inline,
        field_locations=r.locations,
        **fields,
    )


def _execution_fields(r: Reader, ctx: BuildContext) -> dict[str, Any]:
    resources = r.mapping("resources", '{ cpu: "500m", memory: 256Mi }')
    if resources is not None:
        Reader(resources, ctx.problems, f"{r.what}: resources").check_keys({"cpu", "memory"})
    workdir = r.template("workdir", "app")
    if workdir and not is_template(workdir):
        _check_relative(r, "workdir", workdir, ctx, must_exist=False)
    return {
        "env": r.scalar_map("env"),
        "tags": r.string_list("tags", '["gpu"]') or (),
        "timeout": r.duration("timeout", MAX_STEP_TIMEOUT, "24h"),
        "retry": build_retry(r),
        "workdir": workdir,
        "resources": dict(resources) if resources is not None else None,
    }


def _script_text(r: Reader) -> tuple[str | None, bool]:
    """The inline script, and whether it is used as written because it is not a valid template."""
    script = r.string("script", "echo hello")
    if script is None:
        return None, False
    problems = syntax_problems(script)
    if not problems:
        return script, False
    if "{%" in script:  # it meant to be a template (a statement): never run it with its templates unrendered
        r.error(
            "script",
            "template",
            f"invalid template in the script: {problems[0]}",
            "fix the template; literal braces go in {% raw %}...{% endraw %}",
        )
        return script, False
    r.warning(
        "script",
        "script-not-template",
        f"the script is not a valid template ({problems[0]}), so it runs exactly as written",
        "if you meant a template, fix it; to keep literal braces and silence this, "
        "wrap them in {% raw %}...{% endraw %}",
    )
    return script, True


def _script(r: Reader, ctx: BuildContext) -> ScriptPayload:
    (script, literal), source = _script_text(r), r.template("source", "scripts/deploy.sh")
    if r.has("script") and r.has("source"):
        r.error(
            "source",
            "conflict",
            "`script` and `source` cannot both be set",
            "keep `script` for inline code or `source` for a file, not both",
            on_key=True,
        )
    elif script is None and source is None:
        r.error(
            None,
            "missing-field",
            "a script action needs `script` (inline code) or `source` (a file path)",
            'add `script: "echo hello"` or `source: scripts/run.sh`',
        )
    runner = r.member("runner", Runner, Runner.LOCAL)
    language_text = r.choice("language", LANGUAGE_ALIASES, None, aliases=LANGUAGE_ALIASES)
    language = Language(language_text) if language_text else _language_from_source(source)
    deps = r.string_list("dependencies", "[requests]") or ()
    if deps and language is Language.SHELL:
        r.error(
            "dependencies",
            "conflict",
            "`dependencies` need a language other than shell",
            "set `language: python` (or javascript, typescript, go), or install tools in the script",
            on_key=True,
        )
    if r.has("manifest") and runner is not Runner.POD:
        r.error(
            "manifest",
            "invalid-field",
            f"`manifest` only applies to runner: pod (this action runs on {runner.value})",
            "set `runner: pod` or remove `manifest`",
            on_key=True,
        )
    image = r.template("image", "python:3.12")
    if image is not None and runner is Runner.LOCAL:
        r.error(
            "image",
            "invalid-field",
            "`image` only applies to runner: docker or runner: pod",
            "set `runner: docker`, or remove `image`",
            on_key=True,
        )
    if source and not is_template(source):
        _check_relative(r, "source", source, ctx, must_exist=True)
    return ScriptPayload(
        script=script,
        literal=literal,
        source=source,
        runner=runner,
        language=language,
        dependencies=deps,
        interpreter=r.string("interpreter", "python3.12"),
        args=r.template_list("args") or (),
        manifest=r.mapping("manifest", "{ spec: { serviceAccountName: deployer } }"),
        image=image,
    )


def _language_from_source(source: str | None) -> Language:
    if source and not is_template(source):
        return _EXTENSIONS.get(PurePosixPath(source).suffix.lower(), Language.SHELL)
    return Language.SHELL


def _check_relative(r: Reader, key: str, path: str, ctx: BuildContext, must_exist: bool) -> None:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts:
        parts = list(pure.parts)
        depth = 0
        escapes = pure.is_absolute()
        for part in parts:
            depth += -1 if part == ".." else (0 if part in (".", "/") else 1)
            escapes = escapes or depth < 0
        if escapes:
            r.error(
                key,
                "path-escape",
                f"`{key}` path {path!r} leaves the workspace",
                "use a path relative to the workspace root, e.g. scripts/deploy.sh",
            )
            return
    if ctx.file_exists is not None:
        if must_exist and not ctx.file_exists(str(pure)):
            r.error(
                key,
                "missing-file",
                f"`{key}` file {path!r} does not exist in the workspace",
                f"create {path} or fix the path (it is relative to the repository root)",
            )
        return
    if ctx.root is None:
        return
    root = ctx.root.resolve()
    target = ctx.root / path
    try:
        resolved = target.resolve()
    except OSError:
        resolved = target
    if resolved != root and root not in resolved.parents:
        r.error(
            key,
            "path-escape",
            f"`{key}` path {path!r} resolves outside the workspace (through a symlink)",
            "point it at a file inside the workspace",
        )
        return
    if must_exist and not target.is_file():
        r.error(
            key,
            "missing-file",
            f"`{key}` file {path!r} does not exist in the workspace",
            f"create {path} or fix the path (it is relative to the workspace root)",
        )


def _container(r: Reader, ctx: BuildContext) -> ContainerPayload:
    r.require("image", "add `image: alpine:3.20` (the image to run)")
    return ContainerPayload(
        image=r.template("image", "alpine:3.20"),
        cmd=r.template("cmd", "deploy --env production"),
        entrypoint=r.template_list("entrypoint", '["/app/run"]'),
        command=r.template_list("command", '["migrate", "--target", "latest"]'),
    )


def _pod(r: Reader, ctx: BuildContext) -> ContainerPayload:
    return replace(_container(r, ctx), manifest=r.mapping("manifest", "{ spec: { serviceAccountName: deployer } }"))


def _task(r: Reader, ctx: BuildContext) -> TaskPayload:
    if r.has("pattern") and r.has("task"):
        r.error("pattern", "conflict", "a task action has `task:` or `pattern:`, not both", "remove one", on_key=True)
    elif r.has("pattern"):
        return _task_pattern(r, ctx)
    r.require("task", "add `task: <name of the task to run>` (or `pattern: deploy-*` for every matching task)")
    task = r.string("task", "cleanup")
    if task is not None and ctx.task_names and task not in ctx.task_names:
        hint = suggest(task, ctx.task_names)
        r.error(
            "task",
            "unknown-task",
            f"task {task!r} does not exist" + (f"; {hint}" if hint else ""),
            f"tasks in this workspace: {', '.join(sorted(ctx.task_names))}",
        )
    return TaskPayload(task=task)


def _task_pattern(r: Reader, ctx: BuildContext) -> TaskPayload:
    pattern = r.string("pattern", "deploy-*")
    if pattern is None:
        return TaskPayload()
    try:
        tasks = matching_names(pattern, ctx.task_names)
    except PatternError as exc:
        r.error("pattern", "bad-value", str(exc), "e.g. `pattern: deploy-*` or `pattern: ^deploy-(eu|us)$`")
        return TaskPayload(pattern=pattern)
    if not tasks and ctx.task_names:
        r.error(
            "pattern",
            "unknown-task",
            f"pattern {pattern!r} matches no task",
            f"tasks in this workspace: {', '.join(sorted(ctx.task_names)[:20])}",
        )
    return TaskPayload(pattern=pattern, tasks=tuple(tasks))


def _approval(r: Reader, ctx: BuildContext) -> ApprovalPayload:
    approvers = r.string_list("approvers", '[alice, "@org/platform"]') or ()
    for entry in approvers:
        org, slash, team = entry.lstrip("@").partition("/")
        if not org or (slash and not team) or (slash and not entry.startswith("@")) or " " in entry:
            r.error(
                "approvers",
                "bad-value",
                f"approver {entry!r} is neither a user name nor a team",
                'write a user as `alice` and a team as `"@org/team"` (quoted: YAML reads @ specially)',
            )
    teams = any("/" in entry for entry in approvers)
    required = r.integer("required", minimum=1)
    if required is not None and approvers and not teams and required > len(approvers):
        r.error(
            "required",
            "out-of-range",
            f"`required` is {required} but only {len(approvers)} approver(s) are listed",
            "list more approvers or lower `required`",
        )
    return ApprovalPayload(
        message=r.template("message", '"Deploy {{ input.version }}?"'),
        approvers=approvers,
        required_approvals=required or 1,
    )


def _agent(r: Reader, ctx: BuildContext) -> AgentPayload:
    r.require("provider", "add `provider: <provider id from the server configuration>`")
    r.require("prompt", 'add `prompt: "..."` (the message sent to the model)')
    return AgentPayload(
        provider=r.string("provider"),
        prompt=r.template("prompt"),
        system_prompt=r.template("system_prompt"),
        model=r.string("model"),
        max_tokens=r.integer("max_tokens", minimum=1),
        temperature=r.number("temperature", 0, 2),
        tools=_agent_tools(r, ctx),
        max_turns=r.integer("max_turns", 1, 100),
        interactive=r.boolean("interactive"),
    )


def _agent_tools(r: Reader, ctx: BuildContext) -> tuple[dict[str, str], ...]:
    """`tools: [{task: NAME}, {mcp: SERVER}]`: each names one task of the workspace or one MCP server."""
    items = r.raw("tools", None)
    if items is None:
        return ()
    if not isinstance(items, LocList):
        r.error("tools", "wrong-type", "`tools` must be a list", "write it like `tools: [{ task: lookup-order }]`")
        return ()
    out = []
    for index, item in enumerate(items):
        kinds = [k for k in ("task", "mcp") if isinstance(item, LocDict) and isinstance(item.get(k), str)]
        if not isinstance(item, LocDict) or len(kinds) != 1 or len(item) != 1:
            r.problems.error(
                items.at(index),
                "bad-value",
                f"{r.what}: tools[{index}] must name one task or one MCP server",
                "write `{ task: <task name> }` or `{ mcp: <server of mcp_servers> }`",
            )
            continue
        name = item[kinds[0]]
        if kinds[0] == "mcp" and ctx.mcp_servers is not None and name not in ctx.mcp_servers:
            hint = suggest(name, ctx.mcp_servers)
            r.problems.error(
                item.at("mcp"),
                "unknown-name",
                f"{r.what}: tools[{index}]: MCP server {name!r} is not in `mcp_servers`"
                + (f"; {hint}" if hint else ""),
                "define it under `mcp_servers:` (with `command:` or `url:`)",
            )
        if kinds[0] == "task" and ctx.task_names and name not in ctx.task_names:
            hint = suggest(name, ctx.task_names)
            r.problems.error(
                item.at("task"),
                "unknown-task",
                f"{r.what}: tools[{index}]: task {name!r} does not exist" + (f"; {hint}" if hint else ""),
            )
        out.append({kinds[0]: name})
    return tuple(out)


def _http(r: Reader, ctx: BuildContext) -> HttpPayload:
    r.require("url", 'add `url: "https://example.com/api"`')
    json_body = r.raw("json", ABSENT)
    if json_body is not ABSENT:
        r.check_templates_in(json_body, "json") if not isinstance(json_body, str) else r.check_template(
            json_body, r.at("json"), "json"
        )
    if r.has("json") and r.has("body"):
        r.error("body", "conflict", "`json` and `body` cannot both be set", "keep one request body", on_key=True)
    return HttpPayload(
        url=r.template("url"),
        method=_method(r),
        headers=r.scalar_map("headers", '{ Authorization: "Bearer {{ secret.token }}" }'),
        json_body=json_body,
        body=r.template("body"),
        expected_status=_status_list(r),
    )


def _method(r: Reader) -> HttpMethod:
    value = r.raw("method", None)
    if value is None:
        return HttpMethod.POST if r.has("json") or r.has("body") else HttpMethod.GET
    choices = ACTION_FIELDS["method"].choices
    if isinstance(value, str) and value.upper() in choices:
        return HttpMethod(value.upper())
    r.error("method", "bad-value", f"'method' must be one of {', '.join(choices)}; got {value!r}")
    return HttpMethod.GET


def _status_list(r: Reader) -> tuple[int, ...]:
    value = r.raw("expected_status", None)
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out: list[int] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or not 100 <= item <= 599:
            r.error(
                "expected_status",
                "wrong-type",
                f"expected_status must be HTTP status codes (100-599), got {item!r}",
                "write it like `expected_status: [200, 201]`",
            )
            return ()
        out.append(item)
    return tuple(out)


def _notify(r: Reader, ctx: BuildContext) -> NotifyPayload:
    r.require("channels", "add `channels: [ops]` (channel names from the server configuration)")
    channels = r.string_list("channels", "[ops]") or ()
    if r.has("channels") and not channels and isinstance(r.raw("channels"), list):
        r.error("channels", "missing-field", "`channels` is empty", "name at least one channel")
    return NotifyPayload(channels=channels, title=r.template("title"), message=r.template("message"))


# What only an action of each type has.
_BUILDERS: dict[ActionType, Callable[[Reader, BuildContext], Payload]] = {
    ActionType.SCRIPT: _script,
    ActionType.DOCKER: _container,
    ActionType.POD: _pod,
    ActionType.TASK: _task,
    ActionType.APPROVAL: _approval,
    ActionType.AGENT: _agent,
    ActionType.HTTP: _http,
    ActionType.NOTIFY: _notify,
}
