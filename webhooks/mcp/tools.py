"""The tools `/mcp` offers: what the API does, for an assistant. Each needs the permission its API route needs,
checks its arguments against its schema, and answers with the API's representations."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import g
from jsonschema import Draft202012Validator

from runner import runs as run_service
from runner.engine.events import Cancel
from runner.errors import StromError
from runner.outputs import artifact_path
from runner.store import RunFilter

from ..access.roles import PERMISSIONS
from ..access.tokens import caller
from ..api.events import event_json
from ..api.representations import run_artifacts_json, run_json, run_summary_json, task_json
from ..api.runs import apply_to_run, decide_gate, load_run
from ..context import current_service
from ..ratelimits import count_start

__all__ = ["TOOLS", "Tool", "ToolError", "call"]

LOG_LINES = 200  # lines read_log answers at most
ARTIFACT_BYTES = 1024 * 1024  # get_artifact answers content up to this size


class ToolError(Exception):
    """Why a tool call did nothing: sent back as the tool's result, marked an error."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    permission: str
    schema: dict[str, Any]
    run: Callable[[dict[str, Any]], dict[str, Any]]


def _schema(required: tuple[str, ...] = (), **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


_NAME = {"type": "string", "minLength": 1, "maxLength": 200}
_TEXT = {"type": "string", "maxLength": 2000}
_LIMIT = {"type": "integer", "minimum": 1, "maximum": 100}


def _definitions(workspace: str):
    service = current_service()
    if workspace not in service.config.workspaces:
        raise ToolError(f"no workspace {workspace!r}; workspaces: {', '.join(service.config.workspaces)}")
    return run_service.load_definitions(service, workspace).workspace


# ------------------------------------------------------------------ the tools
def _list_workspaces(args: dict[str, Any]) -> dict[str, Any]:
    return {"workspaces": [{"name": ws.name, "kind": ws.kind} for ws in current_service().config.workspaces.values()]}


def _list_tasks(args: dict[str, Any]) -> dict[str, Any]:
    loaded = _definitions(args["workspace"])
    paused = current_service().pauses.of(args["workspace"])
    triggers = list(loaded.triggers.values())
    tasks = sorted(loaded.tasks.values(), key=lambda t: t.name)
    return {"tasks": [task_json(args["workspace"], t, triggers, paused) for t in tasks]}


def _describe_task(args: dict[str, Any]) -> dict[str, Any]:
    loaded = _definitions(args["workspace"])
    task = loaded.tasks.get(args["task"])
    if task is None:
        raise ToolError(
            f"no task {args['task']!r} in workspace {args['workspace']!r}; tasks: {', '.join(loaded.tasks)}"
        )
    paused = current_service().pauses.of(args["workspace"])
    return task_json(args["workspace"], task, list(loaded.triggers.values()), paused)


def _start_run(args: dict[str, Any]) -> dict[str, Any]:
    workspace, task = args["workspace"], args["task"]
    _definitions(workspace)
    count_start(caller(), workspace)
    state = run_service.execute(current_service(), workspace, task, args.get("input") or {}, source="mcp", by=caller())
    return run_json(current_service(), state)


def _get_run(args: dict[str, Any]) -> dict[str, Any]:
    return run_json(current_service(), load_run(args["run"]))


def _read_log(args: dict[str, Any]) -> dict[str, Any]:
    state = load_run(args["run"])
    step = args.get("step")
    if step is not None and step not in state.steps:
        raise ToolError(f"run {state.id} has no step {step!r}; steps: {', '.join(state.steps)}")
    limit = args.get("limit", LOG_LINES)
    page = current_service().logs.page(state.id, after=args.get("after") or "0-0", step=step, limit=limit)
    lines = [line.to_dict() for line in page.lines]
    return {"lines": lines, "next": page.next, "more": page.more, "status": state.status.value}


def _cancel_run(args: dict[str, Any]) -> dict[str, Any]:
    state = apply_to_run(args["run"], Cancel(args.get("reason") or "cancelled from an assistant", by=caller()))
    return run_json(current_service(), state)


def _decide_gate(args: dict[str, Any]) -> dict[str, Any]:
    state = decide_gate(args["run"], args["step"], args["approve"], args.get("reason"), args.get("answer"))
    return run_json(current_service(), state)


def _list_runs(args: dict[str, Any]) -> dict[str, Any]:
    flt = RunFilter(workspace=args.get("workspace"), task=args.get("task"), status=args.get("status"))
    page = current_service().runs.list(flt, limit=args.get("limit", 20))
    return {"runs": [run_summary_json(current_service(), s) for s in page.runs]}


def _list_events(args: dict[str, Any]) -> dict[str, Any]:
    records = current_service().repo_events.list(args.get("workspace"), limit=args.get("limit", 20))
    return {"events": [event_json(r) for r in records]}


def _list_artifacts(args: dict[str, Any]) -> dict[str, Any]:
    state = load_run(args["run"])
    return {"artifacts": run_artifacts_json(state)}


def _get_artifact(args: dict[str, Any]) -> dict[str, Any]:
    """An artifact's content: as text when it is text, else base64; past 1 MiB only where to download it."""
    state = load_run(args["run"])
    name = args["name"]
    found = [(run.name, a) for run in state.steps.values() for a in run.artifacts or () if a.get("name") == name]
    if args.get("step"):
        found = [(step, a) for step, a in found if step == args["step"]]
    if not found:
        raise ToolError(f"run {state.id} kept no artifact {name!r}; list_artifacts lists them")
    if len(found) > 1:
        raise ToolError(f"several steps kept {name!r}: give `step`, one of {', '.join(s for s, _ in found)}")
    step, artifact = found[0]
    out = {"name": name, "step": step, "size": artifact.get("size"), "content_type": artifact.get("content_type")}
    out["url"] = artifact_path(state.id, step, name)
    if (artifact.get("size") or 0) > ARTIFACT_BYTES:
        return {**out, "note": f"over {ARTIFACT_BYTES // 1024} KiB: download it from url with an API token"}
    body, _ = current_service().objects.open(artifact["key"])
    try:
        data = body.read(ARTIFACT_BYTES + 1)
    finally:
        body.close()
    kind = str(artifact.get("content_type") or "")
    if kind.startswith("text/") or kind in ("application/json", "application/xml", "application/yaml"):
        try:
            return {**out, "text": data.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    return {**out, "base64": base64.b64encode(data).decode("ascii")}


_STATUS = {"type": "string", "enum": ["queued", "running", "waiting", "succeeded", "failed", "timed_out", "cancelled"]}
_RUN = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$", "description": "A run's id"}
TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool("list_workspaces", "The workspaces this Strom serves.", "read", _schema(), _list_workspaces),
        Tool(
            "list_tasks",
            "A workspace's tasks: their steps, triggers and input schemas (what start_run's input takes).",
            "read",
            _schema(("workspace",), workspace=_NAME),
            _list_tasks,
        ),
        Tool(
            "describe_task",
            "One task: its steps, triggers and input schema.",
            "read",
            _schema(("workspace", "task"), workspace=_NAME, task=_NAME),
            _describe_task,
        ),
        Tool(
            "start_run",
            "Start a run of a task with inputs (checked against its input schema); answers the new run.",
            "run",
            _schema(("workspace", "task"), workspace=_NAME, task=_NAME, input={"type": "object"}),
            _start_run,
        ),
        Tool(
            "get_run",
            "A run's status, steps, outputs and errors.",
            "read",
            _schema(("run",), run=_RUN),
            _get_run,
        ),
        Tool(
            "read_log",
            "Log lines of a run (or one step), after the cursor `after` (the `next` of the previous answer); "
            "`more` says whether more lines are stored already.",
            "read",
            _schema(
                ("run",),
                run=_RUN,
                step=_NAME,
                after={"type": "string", "pattern": "^[0-9]{1,20}(-[0-9]{1,20})?$"},
                limit={"type": "integer", "minimum": 1, "maximum": LOG_LINES},
            ),
            _read_log,
        ),
        Tool(
            "cancel_run",
            "Cancel a run that has not finished.",
            "run",
            _schema(("run",), run=_RUN, reason=_TEXT),
            _cancel_run,
        ),
        Tool(
            "decide_gate",
            "Approve (approve: true) or reject an approval step a run waits at; the step's approvers apply. A question "
            "an agent step asked (approval.question) is answered with approve: true and the answer.",
            "approve",
            _schema(
                ("run", "step", "approve"),
                run=_RUN,
                step=_NAME,
                approve={"type": "boolean"},
                reason=_TEXT,
                answer={"type": "string", "maxLength": 16000},
            ),
            _decide_gate,
        ),
        Tool(
            "list_runs",
            "Recent runs, newest first, optionally of one workspace, task or status.",
            "read",
            _schema(workspace=_NAME, task=_NAME, status=_STATUS, limit=_LIMIT),
            _list_runs,
        ),
        Tool(
            "list_artifacts",
            "The files a run's steps kept in $ARTIFACTS_DIR: name, step, size, content type.",
            "read",
            _schema(("run",), run=_RUN),
            _list_artifacts,
        ),
        Tool(
            "get_artifact",
            "One artifact's content (text as text, anything else as base64), up to 1 MiB.",
            "read",
            _schema(("run", "name"), run=_RUN, name={"type": "string", "maxLength": 1024}, step=_NAME),
            _get_artifact,
        ),
        Tool(
            "list_events",
            "Recent repository events (webhooks, pushes, polls) and what became of each.",
            "read",
            _schema(workspace=_NAME, limit=_LIMIT),
            _list_events,
        ),
    )
}


def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run tool `name` as the caller; ToolError says why it did nothing."""
    tool = TOOLS[name]
    token = g.strom_token
    if tool.permission not in PERMISSIONS[token.role]:
        raise ToolError(f"token {token.name!r} (role {token.role}) may not {tool.permission}: {name} needs it")
    problem = next(iter(Draft202012Validator(tool.schema).iter_errors(arguments)), None)
    if problem is not None:
        where = ".".join(str(p) for p in problem.absolute_path) or "arguments"
        raise ToolError(f"{where}: {problem.message[:300]}")
    try:
        return tool.run(arguments)
    except StromError as exc:  # ApiError too: a rate limit, an unknown task, refused inputs
        raise ToolError(str(exc)) from exc
