"""GitLab webhooks: the plain-text `X-Gitlab-Token` and GitLab's payloads."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import PayloadError, VerificationError
from .event import Comment, EventKind, EventSource, PullRequest, RepoEvent
from .verify import (
    changed_files,
    commit_summaries,
    decode_body,
    field,
    first_header,
    header,
    integer,
    mapping,
    ref_fields,
    shaped,
    text,
    token_matches,
    usable_secrets,
)

__all__ = ["GITLAB", "MAX_PUSH_COMMITS", "GitLab"]

MAX_PUSH_COMMITS = 20
TOKEN = "X-Gitlab-Token"
MR_ACTIONS = {"open": "opened", "reopen": "reopened", "close": "closed", "merge": "merged"}
NOTEABLES = {"Commit": "a commit", "Issue": "an issue", "Snippet": "a snippet"}
BOT_USER = re.compile(r"^(project|group)_\d+_bot")  # users behind project and group access tokens

Fields = dict[str, Any]


def _path(project: Any) -> str | None:
    return text(mapping(project).get("path_with_namespace")) or None


def _clone_urls(data: Mapping[str, Any]) -> tuple[str, ...]:
    project = mapping(data.get("project")) or mapping(data.get("repository"))
    return tuple(u for u in (text(project.get("git_http_url")), text(project.get("git_ssh_url"))) if u)


def _author(data: Mapping[str, Any], author_id: Any) -> str:
    """The username of the merge request's author, when the payload's user is that author."""
    user = mapping(data.get("user"))
    return text(user.get("username")) if author_id is not None and user.get("id") == author_id else ""


def _push(data: Mapping[str, Any]) -> Fields:
    after, ref = field(data, "after"), field(data, "ref")
    if not isinstance(after, str) or not isinstance(ref, str):
        raise PayloadError("push payload has a `ref` or `after` that is not a string")
    fields = ref_fields(ref, text(data.get("before")), after)
    checkout = text(data.get("checkout_sha"))
    if checkout and not fields["deleted"]:
        fields["sha"] = checkout
    listed = data.get("commits")
    commits: list[Any] = listed if isinstance(listed, list) else []
    total = data.get("total_commits_count")
    complete = total <= len(commits) if isinstance(total, int) else len(commits) < MAX_PUSH_COMMITS
    complete = complete and not (fields["created"] and not commits)
    head = next((c for c in commits if isinstance(c, Mapping) and c.get("id") in (after, checkout)), {})
    fields.update(
        actor=text(data.get("user_username")),
        message=text(head.get("message")),
        commits=commit_summaries(commits),
        changed_files=changed_files(commits, complete) if fields["kind"] is EventKind.PUSH else None,
    )
    return fields


def _mr_action(attributes: Mapping[str, Any]) -> str:
    action = text(attributes.get("action")) or "update"
    if action == "update":
        return "synchronize" if attributes.get("oldrev") else "edited"
    return MR_ACTIONS.get(action, action)


def _merge_request(data: Mapping[str, Any]) -> Fields:
    attributes = mapping(field(data, "object_attributes"))
    iid = integer(data, "object_attributes.iid")
    head_sha = text(field(data, "object_attributes.last_commit.id"))
    action = _mr_action(attributes)
    head_ref = text(attributes.get("source_branch"))
    return {
        "kind": EventKind.PULL_REQUEST,
        "ref": f"refs/merge-requests/{iid}/head",
        "branch": head_ref or None,
        "sha": head_sha,
        "before": text(attributes.get("oldrev")) or None,
        "actor": text(mapping(data.get("user")).get("username")),
        "pr": _pull_request(data, attributes, iid, action, head_sha),
    }


def _pull_request(data: Mapping[str, Any], mr: Mapping[str, Any], iid: int, action: str, head_sha: str) -> PullRequest:
    return PullRequest(
        number=iid,
        action=action,
        title=text(mr.get("title")),
        head_sha=head_sha,
        head_ref=text(mr.get("source_branch")),
        base_ref=text(mr.get("target_branch")),
        from_fork=mr.get("source_project_id") != mr.get("target_project_id"),
        author=_author(data, mr.get("author_id")),
        url=text(mr.get("url")),
        draft=bool(mr.get("draft") or mr.get("work_in_progress")),
        merged=action == "merged" or mr.get("state") == "merged",
        head_repo=_path(mr.get("source")),
    )


def _note(data: Mapping[str, Any]) -> Fields:
    note = mapping(field(data, "object_attributes"))
    action = text(note.get("action")) or "create"
    noteable = text(note.get("noteable_type"))
    if action != "create":
        return {
            "kind": EventKind.OTHER,
            "ignored": f"comment {'edited' if action == 'update' else action} (only new comments are read)",
        }
    if noteable != "MergeRequest":
        what = NOTEABLES.get(noteable, f"a {noteable or 'thing GitLab did not name'}")
        return {"kind": EventKind.OTHER, "ignored": f"note on {what}, not a merge request"}
    if note.get("system"):
        return {"kind": EventKind.OTHER, "ignored": "system note (written by GitLab, not a person)"}
    mr = mapping(field(data, "merge_request"))
    iid = integer(data, "merge_request.iid")
    head_sha = text(mapping(mr.get("last_commit")).get("id"))
    username = text(mapping(data.get("user")).get("username"))
    comment = Comment(
        body=text(note.get("note")),
        author=username,
        id=str(field(note, "id", "note")),
        url=text(note.get("url")),
        is_bot=bool(BOT_USER.match(username)),
    )
    return {
        "kind": EventKind.COMMENT,
        "ref": f"refs/merge-requests/{iid}/head",
        "sha": head_sha or None,
        "branch": text(mr.get("source_branch")) or None,
        "actor": username,
        "comment": comment,
        "pr": _pull_request(data, mr, iid, "created", head_sha),
    }


HANDLERS: dict[str, Callable[[Mapping[str, Any]], Fields]] = {
    "Push Hook": _push,
    "Tag Push Hook": _push,
    "Merge Request Hook": _merge_request,
    "Note Hook": _note,
}


class GitLab:
    """GitLab.com and self-managed GitLab."""

    name = "gitlab"

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return first_header(headers, "Idempotency-Key", "X-Gitlab-Event-UUID")[1]

    def event_name(self, headers: Mapping[str, str]) -> str:
        event = header(headers, "X-Gitlab-Event")
        if event is None:
            raise PayloadError(
                "missing X-Gitlab-Event header: GitLab names the event there "
                "(Push Hook, Merge Request Hook, ...); is this request from a GitLab webhook?"
            )
        return event

    def repository(self, headers: Mapping[str, str], body: bytes) -> str | None:
        return _path(decode_body(headers, body).get("project"))

    def verify_headers(self, headers: Mapping[str, str]) -> str:
        token = header(headers, TOKEN)
        if token is None:
            raise VerificationError(
                f"missing {TOKEN} header: set a secret token on the webhook in GitLab "
                "(Settings > Webhooks > Secret token), the same as in Strom's webhook_secrets"
            )
        return token

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> None:
        keys = usable_secrets(secrets)
        if not token_matches(self.verify_headers(headers), keys):
            raise VerificationError(f"{TOKEN} does not match any configured webhook secret")

    def parse(self, headers: Mapping[str, str], body: bytes) -> RepoEvent:
        event = self.event_name(headers)
        data = decode_body(headers, body)
        return shaped("GitLab", event, lambda: self._event(headers, event, data))

    def _event(self, headers: Mapping[str, str], event: str, data: Mapping[str, Any]) -> RepoEvent:
        fields: Fields = {
            "source": EventSource(self.name),
            "forge_event": event,
            "delivery": self.delivery_id(headers),
            "repo": _path(data.get("project")) or "",
            "clone_urls": _clone_urls(data),
            "actor": text(data.get("user_username") or mapping(data.get("user")).get("username")),
        }
        handler = HANDLERS.get(event)
        if handler is None:
            return RepoEvent(**fields, kind=EventKind.OTHER, ignored=f"Strom does not act on GitLab {event!r} events")
        return RepoEvent(**{**fields, **handler(data)})


GITLAB = GitLab()
