"""Short-lived tokens the web process checks without storing them: an HMAC-SHA256 over what the token says,
keyed with `workers.token`. Commit snapshots (runner/git/snapshot_tokens.py) and objects of the storage
(runner/store/object_tokens.py) hand them to pods; both start with SCOPED_PREFIX, which the API knows as a
scoped token and never takes for one of its own.

    <prefix><scope>.<expires>.<signature>
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

__all__ = ["SCOPED_PREFIX", "opened", "seal", "sign"]

SCOPED_PREFIX = "strom-snap."


def sign(key: str, body: str) -> str:
    digest = hmac.new(key.encode(), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def seal(key: str, prefix: str, scope: str, ttl: float, now: float | None = None) -> str:
    """A token for `scope` under `prefix`, good for `ttl` seconds."""
    body = f"{prefix}{scope}.{int((time.time() if now is None else now) + ttl)}"
    return f"{body}.{sign(key, body)}"


def opened(key: str, token: str, prefix: str) -> tuple[str, int] | None:
    """(scope, expires) of a token `seal` made with `key` under `prefix`; None for any other text."""
    body, _, signature = token.rpartition(".")
    if not body.startswith(prefix) or not hmac.compare_digest(sign(key, body).encode(), signature.encode()):
        return None
    scope, _, expires = body[len(prefix) :].rpartition(".")
    return scope, int(expires) if expires.isascii() and expires.isdigit() else 0
