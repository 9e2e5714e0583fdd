"""What the forges share: reading headers and bodies, checking signatures and tokens, reading payloads."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs

from .errors import PayloadError, VerificationError
from .event import EventKind

__all__ = [
    "NO_SECRET",
    "changed_files",
    "commit_summaries",
    "decode_body",
    "field",
    "first_header",
    "header",
    "hmac_matches",
    "integer",
    "is_zero",
    "mapping",
    "ref_fields",
    "shaped",
    "text",
    "token_matches",
    "usable_secrets",
]

T = TypeVar("T")

NO_SECRET = (
    "no webhook secret is configured for this repository: Strom never accepts unsigned forge webhooks; "
    "set one in the server config (forge: { webhook_secrets: [{ env: HOOK_SECRET }] }) "
    "and the same secret on the webhook"
)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header `name`, looked up case-insensitively; None when absent or empty."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    value = value.strip() if isinstance(value, str) else None
    return value or None


def first_header(headers: Mapping[str, str], *names: str) -> tuple[str, str] | tuple[None, None]:
    """(name, value) of the first of `names` that is present and not empty."""
    for name in names:
        value = header(headers, name)
        if value is not None:
            return name, value
    return None, None


def decode_body(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The JSON object in `body`: raw JSON, or the `payload` field of a form-encoded body."""
    content_type = (header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    raw: bytes | str = body
    if content_type == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError as exc:
            raise PayloadError(f"form-encoded body is not UTF-8: {exc}") from None
        if not form.get("payload"):
            raise PayloadError("form-encoded body has no `payload` field (the webhook's JSON goes there)")
        raw = form["payload"][0]
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise PayloadError(f"body is not JSON: {str(exc)[:200]}") from None
    except RecursionError:
        raise PayloadError("body nests deeper than any forge's payload does") from None
    if not isinstance(data, dict):
        raise PayloadError(f"body is JSON but not an object (got {type(data).__name__})")
    return data


def shaped(forge: str, event: str, build: Callable[[], T]) -> T:
    """`build()`, with the errors of a payload whose fields have unexpected types turned into PayloadError."""
    try:
        return build()
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        raise PayloadError(
            f"the {forge} {event[:60]!r} payload does not have the shape {forge} sends "
            f"({type(exc).__name__}: {str(exc)[:200]})"
        ) from None


def usable_secrets(secrets: Sequence[str]) -> list[bytes]:
    """The non-empty secrets as bytes; VerificationError when there are none."""
    keys = [s.encode("utf-8") for s in secrets if s]
    if not keys:
        raise VerificationError(NO_SECRET)
    return keys


def hmac_matches(body: bytes, signature_hex: str, secrets: Iterable[bytes]) -> bool:
    """True when `signature_hex` is the HMAC-SHA256 of `body` under any secret (all are checked)."""
    given = signature_hex.strip().lower().encode("ascii", "replace")
    matched = False
    for key in secrets:
        expected = hmac.new(key, body, hashlib.sha256).hexdigest().encode("ascii")
        matched |= hmac.compare_digest(expected, given)
    return matched


def token_matches(token: str, secrets: Iterable[bytes]) -> bool:
    """True when `token` equals any secret; compared in constant time, lengths included."""
    given = hashlib.sha256(token.encode("utf-8", "replace")).digest()
    matched = False
    for key in secrets:
        matched |= hmac.compare_digest(hashlib.sha256(key).digest(), given)
    return matched


def field(data: Mapping[str, Any], path: str, what: str = "payload") -> Any:
    """The value at dotted `path`; PayloadError naming the path when it is missing or null."""
    value: Any = data
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            raise PayloadError(f"{what} has no `{path}`")
    return value


def integer(data: Mapping[str, Any], path: str, what: str = "payload") -> int:
    """The integer at dotted `path` (see `field`)."""
    value = field(data, path, what)
    digits = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 18):
        raise PayloadError(f"{what} has `{path}` = {str(value)[:40]!r}, not a number")
    return int(digits)


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def is_zero(sha: str | None) -> bool:
    """True for a missing sha or git's all-zeros "no commit"."""
    return not sha or set(sha) == {"0"}


def ref_fields(
    ref: str, before: str | None, after: str | None, created: bool | None = None, deleted: bool | None = None
) -> dict[str, Any]:
    """kind, ref, branch or tag, sha, before, created, deleted of a push to `ref`."""
    deleted = bool(deleted) or is_zero(after)
    created = bool(created) if created is not None else not deleted and is_zero(before)
    out: dict[str, Any] = {
        "ref": ref,
        "before": before or None,
        "sha": None if deleted else after,
        "created": created,
        "deleted": deleted,
    }
    if ref.startswith("refs/heads/"):
        out.update(kind=EventKind.DELETE if deleted else EventKind.PUSH, branch=ref[len("refs/heads/") :])
    elif ref.startswith("refs/tags/"):
        out.update(kind=EventKind.DELETE if deleted else EventKind.TAG, tag=ref[len("refs/tags/") :])
    else:
        out.update(kind=EventKind.OTHER, ignored=f"push to {ref}, which is neither a branch nor a tag")
    return out


def commit_summaries(commits: Any) -> tuple[dict[str, Any], ...]:
    """{id, message, author, added, removed, modified} of each commit in a push payload."""
    out: list[dict[str, Any]] = []
    for commit in commits if isinstance(commits, list) else ():
        if not isinstance(commit, Mapping):
            continue
        author = commit.get("author")
        out.append(
            {
                "id": text(commit.get("id")),
                "message": text(commit.get("message")),
                "author": text(author.get("name")) if isinstance(author, Mapping) else "",
                **{
                    key: _file_list(commit.get(key), f"commits[{len(out)}].{key}")
                    for key in ("added", "removed", "modified")
                },
            }
        )
    return tuple(out)


def _file_list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"the payload's {path} is a {type(value).__name__}, not a list of file names")
    return list(value)


def changed_files(commits: Any, complete: bool) -> tuple[str, ...] | None:
    """The sorted union of added/removed/modified over `commits`, or None when it cannot be known
    from the payload: the list is not `complete`, or a commit lacks the file lists."""
    if not complete or not isinstance(commits, list):
        return None
    files: set[str] = set()
    for commit in commits:
        if not isinstance(commit, Mapping):
            return None
        for key in ("added", "removed", "modified"):
            names = commit.get(key)
            if not isinstance(names, list):
                return None
            files.update(n for n in names if isinstance(n, str))
    return tuple(sorted(files))
