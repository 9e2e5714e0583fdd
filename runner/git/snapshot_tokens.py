"""Short-lived tokens that let one pod download one commit's snapshot, and nothing else.

    strom-snap.<workspace>.<sha>.<expires>.<signature>

The signature is an HMAC-SHA256 over the rest with the workers' token (`workers.token`), which
the web process knows too; a token names its workspace and commit and stops working at
`expires` (Unix time).
"""

from __future__ import annotations

import time

from ..signed_tokens import SCOPED_PREFIX, opened, seal

__all__ = ["PREFIX", "TTL", "check", "issue"]

PREFIX = SCOPED_PREFIX
TTL = 15 * 60


def issue(key: str, workspace: str, sha: str, ttl: float = TTL, now: float | None = None) -> str:
    return seal(key, PREFIX, f"{workspace}.{sha}", ttl, now)


def check(key: str | None, token: str, workspace: str, sha: str, now: float | None = None) -> str | None:
    """Why `token` does not open the snapshot of `sha` in `workspace`, or None when it does."""
    if not key:
        return "this server has no workers.token to check snapshot tokens with"
    genuine = opened(key, token, PREFIX)
    if genuine is None:
        return "the snapshot token is not valid"
    scope, expires = genuine
    if scope != f"{workspace}.{sha}":
        return "the snapshot token is for another commit"
    if expires < (time.time() if now is None else now):
        return "the snapshot token has expired"
    return None
