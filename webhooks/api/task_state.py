"""A task's state snapshots (docs/task-state.md): their data for readers, their files for operators."""

from __future__ import annotations

from flask import jsonify

from ..access.tokens import requires
from ..context import current_service
from ..errors import ApiError
from . import bp
from .objects import stream_object

__all__ = ["snapshot_json", "task_state", "task_state_files"]


def _snapshots(workspace: str, task: str) -> list[dict]:
    service = current_service()
    if workspace not in service.config.workspaces:
        raise ApiError(404, "not_found", f"no workspace {workspace!r}")
    return service.task_states.history(workspace, task)


def snapshot_json(workspace: str, task: str, snapshot: dict) -> dict:
    out = {key: snapshot.get(key) for key in ("id", "job", "step", "created", "data", "size")}
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
