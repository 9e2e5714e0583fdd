"""Short-lived tokens that let one pod download one commit's snapshot, and nothing else.

    strom-snap.<workspace>.<sha>.<expires>.<signature>

The signature is an HMAC-SHA256 over the rest with the workers' token (`workers.token`), which
the web process knows too; a token names its workspace and commit and stops working at
`expires` (Unix time).
"""

from __future__ import annotations

import hmac
import time

from ..signed_tokens import SCOPED_PREFIX, sign

__all__ = ["PREFIX", "TTL", "check", "issue"]

PREFIX = SCOPED_PREFIX
TTL = 15 * 60


def issue(key: str, workspace: str, sha: str, ttl: float = TTL, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + ttl)
    body = f"{PREFIX}{workspace}.{sha}.{expires}"
    return f"{body}.{sign(key, body)}"


def check(key: str | None, token: str, workspace: str, sha: str, now: float | None = None) -> str | None:
    """Why `token` does not open the snapshot of `sha` in `workspace`, or None when it does."""
    if not key:
        return "this server has no workers.token to check snapshot tokens with"
    body, _, signature = token.rpartition(".")
    if not body.startswith(PREFIX) or not hmac.compare_digest(sign(key, body).encode(), signature.encode()):
        return "the snapshot token is not valid"
    parts = body[len(PREFIX) :].rsplit(".", 2)
    if len(parts) != 3 or parts[0] != workspace or parts[1] != sha:
        return "the snapshot token is for another commit"
    if not (parts[2].isascii() and parts[2].isdigit()) or int(parts[2]) < (time.time() if now is None else now):
        return "the snapshot token has expired"
    return None
