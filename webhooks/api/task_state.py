"""A task's state snapshots (docs/task-state.md): their data for readers, their files for operators."""

from __future__ import annotations

import json

from flask import jsonify, request

from runner import runs as run_service
from runner.executors.outfiles import MAX_STATE_ARCHIVE

from ..access.tokens import caller, requires
from ..context import current_service
from ..errors import ApiError
from . import bp
from .objects import stream_object

__all__ = ["snapshot_json", "task_state", "task_state_files", "upload_task_state"]


def _snapshots(workspace: str, task: str) -> list[dict]:
    service = current_service()
    if workspace not in service.config.workspaces:
        raise ApiError(404, "not_found", f"no workspace {workspace!r}")
    return service.task_states.history(workspace, task)


def snapshot_json(workspace: str, task: str, snapshot: dict) -> dict:
    out = {key: snapshot.get(key) for key in ("id", "job", "step", "created", "data", "size", "by")}
    out["files"] = (
        f"/api/workspaces/{workspace}/tasks/{task}/state/{snapshot.get('id')}/files" if snapshot.get("files") else None
    )
    return out


@bp.get("/workspaces/<workspace>/tasks/<task>/state")
@requires("read")
def task_state(workspace, task):
    snapshots = _snapshots(workspace, task)
    return jsonify(snapshots=[snapshot_json(workspace, task, s) for s in snapshots])


@bp.get("/workspaces/<workspace>/tasks/<task>/state/<snapshot>/files")
@requires("run")  # files are not masked as logs and data are: whoever may run the task may have them
def task_state_files(workspace, task, snapshot):
    found = next((s for s in _snapshots(workspace, task) if s.get("id") == snapshot), None)
    if found is None:
        raise ApiError(404, "not_found", f"task {task!r} keeps no state snapshot {snapshot!r}")
    if not found.get("files"):
        raise ApiError(404, "not_found", f"state snapshot {snapshot} has no files (only data)")
    name = f"{task}-state-{snapshot[:12]}.tar.gz"
    return stream_object(
        current_service().objects,
        found["files"],
        mimetype="application/gzip",
        Content_Disposition=f'attachment; filename="{_ascii(name)}"',
    )


def _ascii(name: str) -> str:
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)


@bp.post("/workspaces/<workspace>/tasks/<task>/state")
@requires("run")
def upload_task_state(workspace, task):
    """A snapshot from people: `?data=` a JSON object, the body a gzipped tar of files (or empty)."""
    service = current_service()
    if task not in run_service.load_definitions(service, workspace).workspace.tasks:
        raise ApiError(404, "not_found", f"no task {task!r} in workspace {workspace!r}")
    data = None
    if request.args.get("data") is not None:
        try:
            data = json.loads(request.args["data"])
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ApiError(400, "bad_request", 'data must be a JSON object, like ?data={"domain":"example.com"}')
    request.max_content_length = MAX_STATE_ARCHIVE
    from runner.runs.state_upload import upload_state  # unpacks and packs archives: loaded by its first upload

    snapshot = upload_state(
        service, workspace, task, data, request.stream, request.args.get("mode", "replace"), caller()
    )
    return jsonify(snapshot_json(workspace, task, snapshot)), 201
