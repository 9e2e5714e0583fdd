"""GitHub webhooks: `X-Hub-Signature-256` checks and payload parsing.

Gitea and Forgejo send GitHub-shaped payloads, so the payload readers here are shared with `gitea`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import PayloadError, VerificationError
from .event import Comment, EventKind, EventSource, PullRequest, RepoEvent
from .verify import (
    changed_files,
    commit_summaries,
    decode_body,
    field,
    header,
    hmac_matches,
    integer,
    mapping,
    ref_fields,
    shaped,
    text,
    usable_secrets,
)

__all__ = [
    "GITHUB",
    "MAX_PUSH_COMMITS",
    "GitHub",
    "clone_urls",
    "comment_of",
    "full_name",
    "is_bot",
    "login",
    "push_fields",
]

MAX_PUSH_COMMITS = 20
SIGNATURE = "X-Hub-Signature-256"

Fields = dict[str, Any]


def login(user: Any) -> str:
    user = mapping(user)
    return text(user.get("login") or user.get("username"))


def full_name(repository: Any) -> str | None:
    return text(mapping(repository).get("full_name")) or None


def clone_urls(repository: Any) -> tuple[str, ...]:
    repository = mapping(repository)
    return tuple(u for u in (text(repository.get("clone_url")), text(repository.get("ssh_url"))) if u)


def is_bot(user: Any) -> bool:
    return mapping(user).get("type") == "Bot"


def push_fields(data: Mapping[str, Any], complete: bool) -> Fields:
    """A GitHub-shaped push; `complete` says whether the payload's commit list can be the whole push."""
    after, ref = field(data, "after"), field(data, "ref")
    if not isinstance(after, str) or not isinstance(ref, str):
        raise PayloadError("push payload has a `ref` or `after` that is not a string")
    fields = ref_fields(ref, text(data.get("before")), after, data.get("created"), data.get("deleted"))
    listed = data.get("commits")
    commits: list[Any] = listed if isinstance(listed, list) else []
    head = mapping(data.get("head_commit")) or next(
        (c for c in commits if isinstance(c, Mapping) and c.get("id") == after), {}
    )
    pusher = mapping(data.get("pusher"))
    forced = bool(data.get("forced"))
    complete = complete and not forced and not (fields["created"] and not commits)
    fields.update(
        forced=forced,
        actor=text(pusher.get("login") or pusher.get("username") or pusher.get("name")) or login(data.get("sender")),
        message=text(head.get("message")),
        commits=commit_summaries(commits),
        changed_files=changed_files(commits, complete) if fields["kind"] is EventKind.PUSH else None,
    )
    return fields


def comment_of(data: Mapping[str, Any], association: str | None) -> Comment:
    comment = mapping(field(data, "comment"))
    user = comment.get("user")
    return Comment(
        body=text(comment.get("body")),
        author=login(user) or login(data.get("sender")),
        association=association,
        id=str(field(comment, "id", "comment")),
        url=text(comment.get("html_url")),
        is_bot=is_bot(user),
    )


def _push(data: Mapping[str, Any]) -> Fields:
    commits = data.get("commits")
    return push_fields(data, complete=isinstance(commits, list) and len(commits) < MAX_PUSH_COMMITS)


def _pull_request(data: Mapping[str, Any]) -> Fields:
    pr = mapping(field(data, "pull_request"))
    number = integer(data, "pull_request.number")
    head, base = mapping(pr.get("head")), mapping(pr.get("base"))
    head_repo = full_name(head.get("repo"))
    merged = bool(pr.get("merged"))
    action = text(field(data, "action"))
    if action == "closed" and merged:
        action = "merged"
    head_sha = text(field(data, "pull_request.head.sha"))
    head_ref = text(head.get("ref"))
    return {
        "kind": EventKind.PULL_REQUEST,
        "ref": f"refs/pull/{number}/head",
        "branch": head_ref or None,
        "sha": head_sha,
        "before": (text(data.get("before")) or None) if action == "synchronize" else None,
        "pr": PullRequest(
            number=number,
            action=action,
            title=text(pr.get("title")),
            head_sha=head_sha,
            head_ref=head_ref,
            base_ref=text(base.get("ref")),
            from_fork=head_repo is None or head_repo != full_name(base.get("repo")),
            author=login(pr.get("user")),
            author_association=text(pr.get("author_association")) or None,
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
    if not issue.get("pull_request"):
        return {"kind": EventKind.OTHER, "ignored": "comment on an issue, not a pull request"}
    number = integer(data, "issue.number")
    comment = comment_of(data, text(mapping(data.get("comment")).get("author_association")) or None)
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
            author_association=text(issue.get("author_association")) or None,
        ),
    }


def _same_as_push(event: str) -> Callable[[Mapping[str, Any]], Fields]:
    reason = f"GitHub {event!r} events are ignored: the push event for the same ref is used"
    return lambda data: {"kind": EventKind.OTHER, "ignored": reason}


HANDLERS: dict[str, Callable[[Mapping[str, Any]], Fields]] = {
    "ping": lambda data: {"kind": EventKind.PING},
    "push": _push,
    "pull_request": _pull_request,
    "issue_comment": _issue_comment,
    "create": _same_as_push("create"),
    "delete": _same_as_push("delete"),
}


class GitHub:
    """GitHub and GitHub Enterprise Server (and, through `Gitea`, the forges that send its payloads)."""

    name = "github"
    label = "GitHub"
    handlers = HANDLERS

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return header(headers, "X-GitHub-Delivery")

    def event_name(self, headers: Mapping[str, str]) -> str:
        event = header(headers, "X-GitHub-Event")
        if event is None:
            raise PayloadError(
                "missing X-GitHub-Event header: GitHub names the event there; is this request from a GitHub webhook?"
            )
        return event

    def repository(self, headers: Mapping[str, str], body: bytes) -> str | None:
        return full_name(decode_body(headers, body).get("repository"))

    def verify_headers(self, headers: Mapping[str, str]) -> str:
        """The signature's hex digest; VerificationError when the request is not signed at all."""
        signature = header(headers, SIGNATURE)
        if signature is None:
            raise VerificationError(
                f"missing {SIGNATURE} header: set a secret on the webhook in GitHub "
                "(Settings > Webhooks > Secret), the same as in Strom's webhook_secrets"
            )
        algorithm, _, digest = signature.partition("=")
        if algorithm.strip().lower() != "sha256" or not digest:
            raise VerificationError(f"{SIGNATURE} is not of the form sha256=<hex>")
        return digest

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> None:
        keys = usable_secrets(secrets)
        if not hmac_matches(body, self.verify_headers(headers), keys):
            raise VerificationError(f"{SIGNATURE} does not match any configured webhook secret")

    def parse(self, headers: Mapping[str, str], body: bytes) -> RepoEvent:
        event = self.event_name(headers)
        data = decode_body(headers, body)
        return shaped(self.label, event, lambda: self._event(headers, event, data))

    def _event(self, headers: Mapping[str, str], event: str, data: Mapping[str, Any]) -> RepoEvent:
        repository = data.get("repository")
        fields: Fields = {
            "source": EventSource(self.name),
            "forge_event": event,
            "delivery": self.delivery_id(headers),
            "repo": full_name(repository) or "",
            "clone_urls": clone_urls(repository),
            "actor": login(data.get("sender")),
        }
        handler = self.handlers.get(event)
        if handler is None:
            return RepoEvent(
                **fields, kind=EventKind.OTHER, ignored=f"Strom does not act on {self.label} {event!r} events"
            )
        return RepoEvent(**{**fields, **handler(data)})


GITHUB = GitHub()
