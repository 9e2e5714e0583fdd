"""The one shape every repository event takes, whatever sent it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

__all__ = ["SKIP_MARKERS", "Comment", "EventKind", "EventSource", "PullRequest", "RepoEvent", "asks_to_skip"]

SKIP_MARKERS = re.compile(r"\[(skip ci|ci skip|strom skip|skip strom|no ci)\]", re.IGNORECASE)


def asks_to_skip(message: str | None) -> bool:
    return bool(message and SKIP_MARKERS.search(message))


class EventSource(StrEnum):
    """What sent a repository event. A str: it compares, prints and serialises as its value."""

    GITHUB = "github"
    GITLAB = "gitlab"
    GITEA = "gitea"
    GIT = "git"  # a push to a hosted repository
    POLL = "poll"
    SCHEDULE = "schedule"
    WEBHOOK = "webhook"  # a generic hook
    ALERTMANAGER = "alertmanager"
    MANUAL = "manual"
    JOB = "job"


class EventKind(StrEnum):
    """What happened. A str: it compares, prints and serialises as its value."""

    PUSH = "push"
    TAG = "tag"
    PULL_REQUEST = "pull_request"
    COMMENT = "comment"
    DELETE = "delete"
    PING = "ping"
    OTHER = "other"
    WEBHOOK = "webhook"
    ALERT = "alert"
    MANUAL = "manual"
    JOB = "job"


@dataclass(frozen=True)
class PullRequest:
    number: int
    action: str  # opened, synchronize, reopened, closed, merged, edited, labeled, ...
    title: str = ""
    head_sha: str = ""
    head_ref: str = ""
    base_ref: str = ""
    from_fork: bool = False
    author: str = ""
    author_association: str | None = None  # GitHub's OWNER / MEMBER / COLLABORATOR / CONTRIBUTOR / ...
    url: str = ""
    draft: bool = False
    merged: bool = False
    head_repo: str | None = None


@dataclass(frozen=True)
class Comment:
    body: str
    author: str
    association: str | None = None
    id: str | None = None
    url: str = ""
    is_bot: bool = False


@dataclass(frozen=True)
class RepoEvent:
    source: EventSource
    kind: EventKind
    repo: str = ""
    delivery: str | None = None
    forge_event: str = ""  # the forge's own name for it (X-GitHub-Event, X-Gitlab-Event, ...)
    ref: str | None = None
    branch: str | None = None
    tag: str | None = None
    sha: str | None = None
    before: str | None = None
    actor: str = ""
    created: bool = False
    deleted: bool = False
    forced: bool = False
    message: str = ""
    commits: tuple[Mapping[str, Any], ...] = ()
    changed_files: tuple[str, ...] | None = None  # None: not known from the payload, compute from the mirror
    clone_urls: tuple[str, ...] = ()
    pr: PullRequest | None = None
    comment: Comment | None = None
    ignored: str | None = None  # why Strom does not act on it

    def __post_init__(self) -> None:
        # the stored form (and older callers) give plain strings: they become members (ValueError if unknown)
        object.__setattr__(self, "source", EventSource(self.source))
        object.__setattr__(self, "kind", EventKind(self.kind))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: plain values throughout (`source` and `kind` as their strings)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["source"] = self.source.value
        data["kind"] = self.kind.value
        data["pr"] = asdict(self.pr) if self.pr else None
        data["comment"] = asdict(self.comment) if self.comment else None
        data["commits"] = [dict(c) for c in self.commits]
        data["changed_files"] = list(self.changed_files) if self.changed_files is not None else None
        data["clone_urls"] = list(self.clone_urls)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RepoEvent:
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if values.get("pr"):
            values["pr"] = PullRequest(**values["pr"])
        if values.get("comment"):
            values["comment"] = Comment(**values["comment"])
        values["commits"] = tuple(values.get("commits") or ())
        if values.get("changed_files") is not None:
            values["changed_files"] = tuple(values["changed_files"])
        values["clone_urls"] = tuple(values.get("clone_urls") or ())
        return cls(**values)

    @property
    def head_sha(self) -> str | None:
        return self.pr.head_sha if self.pr else self.sha
