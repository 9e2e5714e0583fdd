"""Workspaces, their tasks and triggers, and starting a run."""

from __future__ import annotations

from flask import jsonify

from runner import runs as run_service
from runner.errors import InputError
from runner.store.pauses import Pausable
from runner.workspace_config import redact_url

from ..access.tokens import caller, requires
from ..context import current_service
from ..errors import ApiError
from ..ratelimits import count_start
from . import bp
from .params import json_object, short_text
from .representations import run_json, task_json, workspace_triggers_json


def _loaded(workspace: str):
    return run_service.load_definitions(current_service(), workspace).workspace


def _describe(config) -> dict:
    entry = {"name": config.name, "kind": config.kind}
    if config.kind == "folder":
        entry["path"] = str(config.folder)
    elif config.kind == "git":
        entry.update(url=redact_url(config.url), branches=list(config.branches), default_branch=config.default_branch)
    else:
        entry.update(
            clone_path=f"/git/{config.name}.git", branches=list(config.branches), default_branch=config.default_branch
        )
    if config.forge:
        entry["forge"] = {"type": config.forge, "repo": config.repo, "webhook": f"/webhooks/{config.forge}"}
    return entry


@bp.get("/workspaces")
@requires("read")
def list_workspaces():
    out = []
    for name, config in current_service().config.workspaces.items():
        entry = _describe(config)
        try:
            loaded = _loaded(name)
            entry.update(valid=True, tasks=len(loaded.tasks), triggers=len(loaded.triggers))
        except Exception as exc:  # noqa: BLE001 - any problem makes the workspace listed as invalid, with why
            entry.update(valid=False, error=str(exc).splitlines()[0])
        out.append(entry)
    return jsonify(workspaces=out)


@bp.get("/workspaces/<workspace>/tasks")
@requires("read")
def list_tasks(workspace):
    loaded = _loaded(workspace)
    triggers = list(loaded.triggers.values())
    paused = current_service().pauses.of(workspace)
    return jsonify(
        tasks=[task_json(workspace, t, triggers, paused) for t in sorted(loaded.tasks.values(), key=lambda t: t.name)]
    )


@bp.get("/workspaces/<workspace>/tasks/<task>")
@requires("read")
def get_task(workspace, task):
    loaded = _loaded(workspace)
    if task not in loaded.tasks:
        raise ApiError(404, "not_found", f"no task {task!r} in workspace {workspace!r}")
    paused = current_service().pauses.of(workspace)
    return jsonify(task_json(workspace, loaded.tasks[task], list(loaded.triggers.values()), paused))


@bp.get("/workspaces/<workspace>/triggers")
@requires("read")
def list_triggers(workspace):
    triggers = _loaded(workspace).triggers.values()
    return jsonify(triggers=workspace_triggers_json(current_service(), workspace, triggers))


@bp.post("/workspaces/<workspace>/tasks/<name>/pause", defaults={"kinds": "tasks", "action": "pause"})
@bp.post("/workspaces/<workspace>/tasks/<name>/resume", defaults={"kinds": "tasks", "action": "resume"})
@bp.post("/workspaces/<workspace>/triggers/<name>/pause", defaults={"kinds": "triggers", "action": "pause"})
@bp.post("/workspaces/<workspace>/triggers/<name>/resume", defaults={"kinds": "triggers", "action": "resume"})
@requires("run")
def pause_or_resume(workspace, kinds, name, action):
    """Pause (optional body {"reason": ...}) or resume a task or a trigger: a paused task's triggers, and a
    paused trigger, do not fire; runs started by hand still start."""
    kind = Pausable.TASK if kinds == "tasks" else Pausable.TRIGGER
    reason = short_text(json_object(), "reason") if action == "pause" else None
    try:
        record = run_service.set_paused(current_service(), workspace, kind, name, caller(), action == "pause", reason)
    except run_service.NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return jsonify(workspace=workspace, kind=str(kind), name=name, paused=record)


@bp.post("/workspaces/<workspace>/tasks/<task>/execute")
@requires("run")
def execute(workspace, task):
    body = json_object()
    if not isinstance(body.get("input", {}), dict):
        raise ApiError(400, "bad_request", 'send a JSON object like {"input": {"name": "value"}}')
    count_start(caller(), workspace)
    state = run_service.execute(current_service(), workspace, task, body.get("input") or {}, source="api", by=caller())
    return _created(state)


def _created(state):
    response = jsonify(run_json(current_service(), state))
    response.status_code = 201
    response.headers["Location"] = f"/api/runs/{state.id}"
    return response


@bp.post("/workspaces/<workspace>/exec")
@requires("run")
def exec_adhoc(workspace):
    """An ad-hoc run: a command or script on the workspace's files, without a task."""
    body = json_object()
    ref = short_text(body, "ref")
    body.pop("ref", None)
    count_start(caller(), workspace)
    state = run_service.exec_run(current_service(), workspace, body, by=caller(), ref=ref)
    return _created(state)


@bp.post("/workspaces/<workspace>/batch")
@requires("run")
def batch(workspace):
    """Start every task a pattern matches (globs and ^regex$, comma-separated); each gets the inputs it declares."""
    body = json_object()
    pattern = short_text(body, "pattern")
    if pattern is None:
        raise ApiError(400, "bad_request", 'send a JSON object like {"pattern": "deploy-*", "input": {...}}')
    if not isinstance(body.get("input", {}), dict):
        raise ApiError(400, "bad_request", "`input` must be an object of input values")
    count_start(caller(), workspace)
    started = run_service.start_batch(current_service(), workspace, pattern, body.get("input") or {}, by=caller())
    if not started.runs:
        raise InputError(f"batch {pattern}", started.refused)
    response = jsonify(
        pattern=pattern,
        runs=[run_json(current_service(), state) for state in started.runs],
        refused=started.refused,
    )
    response.status_code = 201
    return response
