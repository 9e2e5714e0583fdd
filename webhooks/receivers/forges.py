"""`/webhooks/github`, `/webhooks/gitlab`, `/webhooks/gitea` (Forgejo too).

Each request is authenticated before its body is parsed: its signature (or token) is checked on
the raw bytes against the webhook secrets of every workspace with that forge (or of the one the
path names), and only then is the JSON read, with its depth bounded and every field checked
(runner/forges/bounds.py). A repository no verified workspace follows is answered exactly as a
bad signature is, so no one learns what Strom follows. The event is **stored, and only then
answered** 202 with its id; the same delivery id twice answers with the first event's id and
makes one run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import cast

from flask import Blueprint, jsonify, request

from runner.forges.bounds import checked
from runner.forges.errors import ForgeError, PayloadError, VerificationError
from runner.forges.event import EventKind, RepoEvent
from runner.forges.registry import FORGES, Forge
from runner.spec.globs import included
from runner.workspace_config import WorkspaceConfig

from ..context import current_service
from ..errors import ApiError
from .bodies import read_body

__all__ = ["bp"]

bp = Blueprint("forge_webhooks", __name__)

NOT_VERIFIED = "the signature does not match any configured webhook secret"


def _forge_kind(name: str) -> str:
    kind = "gitea" if name == "forgejo" else name
    if kind not in FORGES:
        raise ApiError(
            404,
            "unknown_forge",
            f"no webhook receiver for {name[:40]!r}; use /webhooks/github, /webhooks/gitlab or /webhooks/gitea",
        )
    return kind


def _candidates(kind: str, workspace: str | None) -> list[WorkspaceConfig]:
    """The workspaces whose secrets may sign this request (an unknown path workspace has none)."""
    workspaces = current_service().config.workspaces
    if workspace is not None:
        ws = workspaces.get(workspace)
        return [ws] if ws is not None and ws.forge == kind else []
    return [ws for ws in workspaces.values() if ws.forge == kind]


def _early_ignore(ws: WorkspaceConfig, event: RepoEvent) -> str | None:
    """Reasons to ignore an event that need neither git nor the definitions."""
    if event.ignored:
        return event.ignored
    if event.kind is EventKind.PUSH and ws.branches and not included(event.branch or "", ws.branches):
        return f"branch {event.branch!r} is not followed by workspace {ws.name!r} (branches: {', '.join(ws.branches)})"
    return None


@bp.post("/webhooks/<forge>")
@bp.post("/webhooks/<forge>/<workspace>")
def receive(forge: str, workspace: str | None = None):
    kind = _forge_kind(forge)
    parser = FORGES[kind]
    # werkzeug's Headers is a mapping (read case-insensitively) that does not subclass typing's Mapping
    headers = cast("Mapping[str, str]", request.headers)
    try:
        parser.event_name(headers)
        if not any(ws.webhook_secrets for ws in _candidates(kind, None)):
            parser.verify(headers, b"", [])  # raises: this server has no secret for this forge at all
        candidates = _candidates(kind, workspace)
        parser.verify_headers(headers)  # a request that cannot be signed is refused before its body is read
        body = read_body(current_service().config)
        verified = [ws for ws in candidates if _verifies(parser, headers, body, ws)]
        if not verified:
            raise VerificationError(NOT_VERIFIED)
        event = checked(parser.parse(headers, body))
        if event.repo:
            verified = [ws for ws in verified if (ws.repo or "").lower() == event.repo.lower()]
            if not verified:
                raise VerificationError(NOT_VERIFIED)
    except ForgeError as exc:
        raise ApiError(exc.status_hint, _code(exc), str(exc)) from None
    if event.kind is EventKind.PING:
        return jsonify(pong=True, workspaces=[ws.name for ws in verified]), 200
    if not event.repo:  # an organization-wide event: it concerns no workspace, keep one record of it
        verified = verified[:1]
        event = event if event.ignored else replace(event, ignored="the event names no repository")
    stored = []
    for ws in verified:
        ignored = _early_ignore(ws, event)
        event_id, duplicate = current_service().repo_events.receive(ws.name, event.to_dict(), ignored=ignored)
        entry: dict[str, str | bool] = {"id": event_id, "workspace": ws.name}
        if duplicate:
            entry["duplicate"] = True
        if ignored:
            entry["ignored"] = ignored
        stored.append(entry)
    answer = {**stored[0], "events": stored} if len(stored) > 1 else stored[0]
    return jsonify(answer), 202


def _verifies(parser: Forge, headers: Mapping[str, str], body: bytes, ws: WorkspaceConfig) -> bool:
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
