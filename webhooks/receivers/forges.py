"""`/webhooks/github`, `/webhooks/gitlab`, `/webhooks/gitea` (Forgejo too).

Each request is verified against the webhook secrets of the workspaces that follow its repository,
normalised, **stored, and only then answered** 202 with the event's id. The same delivery id twice
answers with the first event's id and makes one run.
"""
from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, current_app, jsonify, request

from runner.forges.errors import ForgeError, PayloadError, VerificationError
from runner.forges.registry import FORGES
from runner.gitops.globs import included

from ..errors import ApiError

bp = Blueprint("forge_webhooks", __name__)

MAX_BODY = 25 * 1024 * 1024  # GitHub's own cap on payloads


def _service():
    return current_app.extensions["strom"]


def _forge_kind(name: str) -> str:
    kind = "gitea" if name == "forgejo" else name
    if kind not in FORGES:
        raise ApiError(404, "unknown_forge", f"no webhook receiver for {name!r}; use /webhooks/github, "
                                             "/webhooks/gitlab or /webhooks/gitea")
    return kind


def _candidates(kind: str, repo: str | None, workspace: str | None) -> list:
    workspaces = _service().config.workspaces
    if workspace is not None:
        ws = workspaces.get(workspace)
        if ws is None or ws.forge != kind:
            raise ApiError(404, "unknown_workspace", f"no workspace {workspace!r} with a {kind} forge")
        if repo is not None and (ws.repo or "").lower() != repo.lower():
            raise ApiError(404, "unknown_repository", f"workspace {workspace!r} follows {ws.repo!r}, not {repo!r}")
        return [ws]
    mine = [ws for ws in workspaces.values() if ws.forge == kind]
    if repo is None:
        return mine
    found = [ws for ws in mine if (ws.repo or "").lower() == repo.lower()]
    if not found:
        raise ApiError(404, "unknown_repository",
                       f"no workspace follows {kind} repository {repo!r}; add `forge: {{ type: {kind}, repo: {repo} }}` "
                       "to a workspace in the server configuration")
    return found


def _early_ignore(ws, event) -> str | None:
    """Reasons to ignore an event that need neither git nor the definitions."""
    if event.ignored:
        return event.ignored
    if event.kind == "push" and ws.branches and not included(event.branch or "", ws.branches):
        return f"branch {event.branch!r} is not followed by workspace {ws.name!r} (branches: {', '.join(ws.branches)})"
    return None


@bp.post("/webhooks/<forge>")
@bp.post("/webhooks/<forge>/<workspace>")
def receive(forge: str, workspace: str | None = None):
    kind = _forge_kind(forge)
    parser = FORGES[kind]
    request.max_content_length = MAX_BODY
    body = request.get_data(cache=False)
    headers = request.headers
    try:
        parser.event_name(headers)
        repo = parser.repository(headers, body)
        candidates = _candidates(kind, repo, workspace)
        verified = [ws for ws in candidates if _verifies(parser, headers, body, ws)]
        if not verified:
            if not candidates:
                raise VerificationError(f"no workspace has a {kind} forge configured")
            parser.verify(headers, body, candidates[0].webhook_secrets)  # raises with the reason
            raise VerificationError("the signature does not match any configured webhook secret")
        event = parser.parse(headers, body)
    except ForgeError as exc:
        raise ApiError(exc.status_hint, _code(exc), str(exc)) from None
    if event.kind == "ping":
        return jsonify(pong=True, workspaces=[ws.name for ws in verified]), 200
    if repo is None:  # an organization-wide event: it concerns no workspace, keep one record of it
        verified = verified[:1]
        event = event if event.ignored else replace(event, ignored="the event names no repository")
    stored = []
    for ws in verified:
        ignored = _early_ignore(ws, event)
        event_id, duplicate = _service().repo_events.receive(ws.name, event.to_dict(), ignored=ignored)
        entry = {"id": event_id, "workspace": ws.name}
        if duplicate:
            entry["duplicate"] = True
        if ignored:
            entry["ignored"] = ignored
        stored.append(entry)
    answer = {**stored[0], "events": stored} if len(stored) > 1 else stored[0]
    return jsonify(answer), 202


def _verifies(parser, headers, body: bytes, ws) -> bool:
    try:
        parser.verify(headers, body, ws.webhook_secrets)
        return True
    except VerificationError:
        return False


def _code(exc: ForgeError) -> str:
    if isinstance(exc, VerificationError):
        return "unauthorized"
    if isinstance(exc, PayloadError):
        return "bad_payload"
    return "bad_request"
