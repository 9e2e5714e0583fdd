"""Gitea and Forgejo webhooks: hex HMAC-SHA256 signatures and GitHub-shaped payloads."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import PayloadError, VerificationError
from .event import EventKind, PullRequest
from .github import Fields, GitHub, comment_of, full_name, login, push_fields
from .verify import field, first_header, header, hmac_matches, integer, mapping, text, usable_secrets

__all__ = ["FEED_MAX_COMMITS", "GITEA", "Gitea"]

FEED_MAX_COMMITS = 5  # Gitea's [ui] FEED_MAX_COMMIT_NUM default: pushes list at most this many commits
SIGNATURES = ("X-Gitea-Signature", "X-Forgejo-Signature", "X-Gogs-Signature", "X-Hub-Signature-256")
EVENTS = ("X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event")
EVENT_TYPES = ("X-Gitea-Event-Type", "X-Forgejo-Event-Type", "X-Gogs-Event-Type")
EVENT_OF_TYPE = {
    "pull_request_comment": "issue_comment",
    "pull_request_sync": "pull_request",
    "pull_request_assign": "pull_request",
    "pull_request_label": "pull_request",
    "pull_request_milestone": "pull_request",
    "pull_request_review_request": "pull_request",
    "issue_assign": "issues",
    "issue_label": "issues",
    "issue_milestone": "issues",
}
ACTIONS = {"synchronized": "synchronize", "label_updated": "labeled", "label_cleared": "unlabeled"}


def _signature(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(header name, hex digest) of the first signature header with a value."""
    for name in SIGNATURES:
        value = header(headers, name)
        if value and name == "X-Hub-Signature-256":
            algorithm, _, value = value.partition("=")
            value = value if algorithm.strip().lower() == "sha256" else ""
        if value:
            return name, value
    return None, None


def _push(data: Mapping[str, Any]) -> Fields:
    commits = data.get("commits")
    listed = len(commits) if isinstance(commits, list) else 0
    total = data.get("total_commits")
    complete = total <= listed if isinstance(total, int) else listed < FEED_MAX_COMMITS
    return push_fields(data, complete=isinstance(commits, list) and complete)


def _pull_request(data: Mapping[str, Any]) -> Fields:
    pr = mapping(field(data, "pull_request"))
    number = integer(data, "pull_request.number")
    head, base = mapping(pr.get("head")), mapping(pr.get("base"))
    head_repo = full_name(head.get("repo"))
    if isinstance(head.get("repo_id"), int) and isinstance(base.get("repo_id"), int):
        from_fork = head["repo_id"] != base["repo_id"]
    else:
        from_fork = head_repo is None or head_repo != full_name(base.get("repo"))
    merged = bool(pr.get("merged"))
    action = text(field(data, "action"))
    action = "merged" if action == "closed" and merged else ACTIONS.get(action, action)
    head_sha = text(field(data, "pull_request.head.sha"))
    head_ref = text(head.get("ref"))
    return {
        "kind": EventKind.PULL_REQUEST,
        "ref": f"refs/pull/{number}/head",
        "branch": head_ref or None,
        "sha": head_sha,
        "pr": PullRequest(
            number=number,
            action=action,
            title=text(pr.get("title")),
            head_sha=head_sha,
            head_ref=head_ref,
            base_ref=text(base.get("ref")),
            from_fork=from_fork,
            author=login(pr.get("user")),
            url=text(pr.get("html_url")),
            draft=bool(pr.get("draft")),
            merged=merged,
            head_repo=head_repo,
        ),
    }


def _issue_comment(data: Mapping[str, Any]) -> Fields:
    action = text(field(data, "action"))
    issue = mapping(field(data, "issue"))
    if action != "created":
        return {"kind": EventKind.OTHER, "ignored": f"comment {action} (only new comments are read)"}
    if not (data.get("is_pull") or issue.get("pull_request")):
        return {"kind": EventKind.OTHER, "ignored": "comment on an issue, not a pull request"}
    number = integer(data, "issue.number")
    comment = comment_of(data, None)
    return {
        "kind": EventKind.COMMENT,
        "ref": f"refs/pull/{number}/head",
        "actor": comment.author,
        "comment": comment,
        "pr": PullRequest(
            number=number,
            action=action,
            title=text(issue.get("title")),
            author=login(issue.get("user")),
            url=text(issue.get("html_url")),
            merged=bool(mapping(issue.get("pull_request")).get("merged")),
        ),
    }


def _delete(data: Mapping[str, Any]) -> Fields:
    """Gitea sends no push for a deleted branch (only this event); a deleted tag gets both."""
    ref, ref_type = text(field(data, "ref")), text(field(data, "ref_type"))
    if ref_type != "branch":
        return {
            "kind": EventKind.OTHER,
            "ignored": f"Gitea 'delete' events for a {ref_type} are ignored: the push event for the same ref is used",
        }
    return {"kind": EventKind.DELETE, "ref": f"refs/heads/{ref}", "branch": ref, "deleted": True}


HANDLERS: dict[str, Callable[[Mapping[str, Any]], Fields]] = {
    "push": _push,
    "pull_request": _pull_request,
    "issue_comment": _issue_comment,
    "delete": _delete,
    "create": lambda data: {
        "kind": EventKind.OTHER,
        "ignored": "Gitea 'create' events are ignored: the push event for the same ref is used",
    },
}


class Gitea(GitHub):
    """Gitea, Forgejo (and Gogs-compatible headers): GitHub-shaped payloads under their own headers."""

    name = "gitea"
    label = "Gitea"
    handlers = HANDLERS

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return first_header(headers, "X-Gitea-Delivery", "X-Forgejo-Delivery", "X-Gogs-Delivery")[1]

    def event_name(self, headers: Mapping[str, str]) -> str:
        event = first_header(headers, *EVENTS)[1]
        if event is None:
            event_type = first_header(headers, *EVENT_TYPES)[1]
            event = EVENT_OF_TYPE.get(event_type, event_type) if event_type else None
        if event is None:
            raise PayloadError(
                "missing X-Gitea-Event header (or X-Forgejo-Event): Gitea and Forgejo name the "
                "event there; is this request from a Gitea or Forgejo webhook?"
            )
        return event

    def verify_headers(self, headers: Mapping[str, str]) -> str:
        _name, signature = _signature(headers)
        if signature is None:
            raise VerificationError(
                "missing X-Gitea-Signature header (Gitea sends it empty when the webhook has no secret): set a "
                "secret on the webhook (Settings > Webhooks > Secret), the same as in Strom's webhook_secrets"
            )
        return signature

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> None:
        keys = usable_secrets(secrets)
        if not hmac_matches(body, self.verify_headers(headers), keys):
            raise VerificationError(f"{_signature(headers)[0]} does not match any configured webhook secret")


GITEA = Gitea()
