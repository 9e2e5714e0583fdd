"""Commit snapshots as archives, for workers that do not share the server's disk."""

from __future__ import annotations

import re

from flask import request, send_file

from runner.git import snapshot_tokens
from runner.git.mirrors import GitError

from ..access.tokens import requires
from ..context import current_service
from ..errors import ApiError
from . import bp

SHA = re.compile(r"[0-9a-f]{40}")


def _snapshot_token(presented: str, kwargs: dict) -> str | None:
    key = current_service().config.worker_token
    return snapshot_tokens.check(key, presented, kwargs.get("workspace", ""), kwargs.get("sha", ""))


@bp.get("/workspaces/<workspace>/snapshots/<sha>.tar.gz")
@requires("read", scoped=_snapshot_token)
def snapshot_archive(workspace, sha):
    service = current_service()
    ws = service.config.workspaces.get(workspace)
    if ws is None or not ws.is_git:
        raise ApiError(404, "not_found", f"no git workspace {workspace!r}")
    if not SHA.fullmatch(sha):
        raise ApiError(400, "bad_request", "name the commit by its full 40-character sha")
    etag = f'"{sha}"'
    if etag in request.headers.get("If-None-Match", ""):
        return "", 304, {"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable"}
    path = service.repos.archives / f"{sha}.tar.gz"
    if not path.is_file():
        mirror = service.repos.mirror(ws)
        if not mirror.has(sha):
            raise ApiError(404, "not_found", f"commit {sha} is not in workspace {workspace!r}")
        try:
            mirror.archive(sha, path)
        except GitError as exc:
            raise ApiError(500, "archive_failed", str(exc)) from None
    response = send_file(path, mimetype="application/gzip", etag=sha, conditional=True, max_age=31536000)
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
