"""Every field of a repository event checked and bounded before the event is stored.

Payloads come from strangers. A field that names something (a ref, a commit, a user, a pull
request number) either fits (its type, its length, its characters, git's rules for ref names)
or the event is refused with a PayloadError that names the field: nothing odd reaches git, a
template or a shell later. Free text (commit messages, titles, comment bodies) is cut to its
limit instead, and file lists too long to be useful are left to be computed from the mirror.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .errors import PayloadError
from .event import Comment, EventKind, PullRequest, RepoEvent

__all__ = ["MAX_COMMITS", "MAX_FILES", "NAME", "REF", "TEXT", "checked", "ref_problem"]

NAME = 255  # users, repositories, event names, delivery ids
REF = 1024
TEXT = 64 * 1024  # commit messages, comment bodies
TITLE = 1024
URL = 2048
PATH = 4096
MAX_COMMITS = 100
MAX_FILES = 10_000
MAX_PR = 2**31 - 1
KINDS = frozenset(EventKind)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SHA = re.compile(r"[0-9a-fA-F]{4,64}")
_TOKEN = re.compile(r"[A-Za-z0-9_.:/@+-]{1,128}")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def ref_problem(name: str) -> str | None:
    """Why `name` is not a valid git ref name (git check-ref-format's rules), or None."""
    if not name:
        return "it is empty"
    if len(name.encode("utf-8", "surrogatepass")) > REF:
        return f"it is longer than {REF} bytes"
    if _REF_FORBIDDEN.search(name):
        return "it contains a space, a control character or one of ~ ^ : ? * [ \\"
    if ".." in name or "@{" in name or name == "@":
        return "it contains '..' or '@{'"
    if name.endswith((".", "/")) or name.startswith("/") or "//" in name:
        return "it starts or ends with '/', ends with '.', or has an empty part"
    if any(part.startswith(".") or part.endswith(".lock") for part in name.split("/")):
        return "a part of it starts with '.' or ends with '.lock'"
    return None


def _bad(path: str, why: str) -> PayloadError:
    return PayloadError(f"the payload's {path} {why}")


def _utf8(value: str, path: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(path, "is not valid Unicode (a lone surrogate)") from None


def _name(value: Any, path: str, limit: int = NAME, optional: bool = True) -> Any:
    if value is None or value == "":
        if optional:
            return value
        raise _bad(path, "is missing")
    if not isinstance(value, str):
        raise _bad(path, f"is a {type(value).__name__}, not a string")
    if len(value) > limit:
        raise _bad(path, f"is longer than {limit} characters")
    if _CONTROL.search(value):
        raise _bad(path, "contains control characters")
    _utf8(value, path)
    return value


def _text(value: Any, path: str, limit: int) -> str:
    """Free text: cut to `limit`, control characters (but newlines and tabs) removed, bad Unicode replaced."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(path, f"is a {type(value).__name__}, not a string")
    cut = _CONTROL_IN_TEXT.sub("", value[:limit])
    return cut.encode("utf-8", "replace").decode("utf-8")


def _ref(value: Any, path: str, prefix: str = "") -> Any:
    if value is None or value == "":
        return value
    _name(value, path, REF)
    problem = ref_problem(prefix + value)
    if problem:
        raise _bad(path, f"is not a valid git ref name: {problem}")
    return value


def _sha(value: Any, path: str) -> Any:
    if value is None or value == "":
        return value
    if not isinstance(value, str) or not _SHA.fullmatch(value):
        raise _bad(path, "is not a commit id (hexadecimal)")
    return value


def _url(value: Any, path: str) -> str:
    return _name(value, path, URL) or ""


def _paths(value: Any, path: str) -> list[str]:
    if not isinstance(value, (list, tuple)):
        raise _bad(path, f"is a {type(value).__name__}, not a list of file names")
    for i, item in enumerate(value[:MAX_FILES]):
        _name(item, f"{path}[{i}]", PATH, optional=False)
    return list(value[:MAX_FILES])


def _commit(commit: Mapping[str, Any], path: str, with_files: bool) -> dict[str, Any]:
    files = ("added", "removed", "modified")
    return {
        "id": _name(commit.get("id"), f"{path}.id", 128) or "",
        "message": _text(commit.get("message"), f"{path}.message", TEXT),
        "author": _text(commit.get("author"), f"{path}.author", NAME),
        **{key: _paths(commit.get(key) or [], f"{path}.{key}") if with_files else [] for key in files},
    }


def _files_fit(event: RepoEvent) -> bool:
    """Whether the payload's file lists can be kept. Git allows any name (tabs, newlines, huge ones); a list
    holding one that does not fit here is dropped, and the changed files are computed from the mirror."""
    lists = [event.changed_files or ()] + [
        c.get(k) or ()
        for c in event.commits[:MAX_COMMITS]
        if isinstance(c, Mapping)
        for k in ("added", "removed", "modified")
    ]
    try:
        for i, value in enumerate(lists):
            _paths(value, f"file list {i}")
    except PayloadError:
        return False
    return True


def _pull_request(pr: PullRequest) -> PullRequest:
    if isinstance(pr.number, bool) or not isinstance(pr.number, int) or not 0 < pr.number <= MAX_PR:
        raise _bad("pull request number", f"is {pr.number!r}, not a number from 1 to {MAX_PR}")
    if not isinstance(pr.action, str) or not _TOKEN.fullmatch(pr.action):
        raise _bad("pull request action", "is not a word")
    return replace(
        pr,
        title=_text(pr.title, "pull request title", TITLE),
        head_sha=_sha(pr.head_sha, "pull request head sha"),
        head_ref=_ref(pr.head_ref, "pull request head ref", "refs/heads/"),
        base_ref=_ref(pr.base_ref, "pull request base ref", "refs/heads/"),
        author=_name(pr.author, "pull request author"),
        author_association=_name(pr.author_association, "author association", 64),
        url=_url(pr.url, "pull request url"),
        head_repo=_name(pr.head_repo, "pull request head repository"),
    )


def _comment(comment: Comment) -> Comment:
    if comment.id is not None and not (isinstance(comment.id, str) and _TOKEN.fullmatch(comment.id)):
        raise _bad("comment id", "is not an id")
    return replace(
        comment,
        body=_text(comment.body, "comment body", TEXT),
        author=_name(comment.author, "comment author"),
        association=_name(comment.association, "comment author association", 64),
        url=_url(comment.url, "comment url"),
    )


def checked(event: RepoEvent) -> RepoEvent:
    """`event` with every field checked (PayloadError names the first that does not fit) and free text cut."""
    if event.kind not in KINDS:
        raise _bad("event kind", f"is {event.kind!r}")
    for path in ("repo", "delivery", "forge_event", "actor"):
        _name(getattr(event, path), path)
    _ref(event.ref, "ref")
    _ref(event.branch, "branch", "refs/heads/")
    _ref(event.tag, "tag", "refs/tags/")
    _sha(event.sha, "commit sha (after)")
    _sha(event.before, "previous sha (before)")
    keep_files = _files_fit(event)
    commits = [_commit(c, f"commits[{i}]", keep_files) for i, c in enumerate(event.commits[:MAX_COMMITS])]
    files = event.changed_files if keep_files else None
    if files is not None:
        files = tuple(_paths(files, "changed files")) if len(files) <= MAX_FILES else None
    if len(event.clone_urls) > 4:
        raise _bad("clone urls", "has more than 4 entries")
    for i, url in enumerate(event.clone_urls):
        _url(url, f"clone url {i}")
    return replace(
        event,
        message=_text(event.message, "commit message", TEXT),
        commits=tuple(commits),
        changed_files=files,
        ignored=_text(event.ignored, "reason", TEXT) or None if event.ignored else None,
        pr=_pull_request(event.pr) if event.pr else None,
        comment=_comment(event.comment) if event.comment else None,
    )
