"""Short-lived tokens that open one object of the storage for one verb, for a pod: `get` the task state files
its step starts from, `put` the files its step left (runner/executors/kubernetes.py).

    strom-snap.obj.<verb>.<key>.<expires>.<signature>

Signed like snapshot tokens (runner/signed_tokens.py: an HMAC with `workers.token`, which the web process knows
too), under the same prefix, so the API treats both as scoped tokens and never as its own.
"""

from __future__ import annotations

import time

from ..signed_tokens import SCOPED_PREFIX, opened, seal

__all__ = ["TOKEN_PREFIX", "check", "issue"]

TOKEN_PREFIX = f"{SCOPED_PREFIX}obj."
VERBS = ("get", "put")


def issue(key: str, verb: str, object_key: str, ttl: float, now: float | None = None) -> str:
    if verb not in VERBS:
        raise ValueError(f"an object token opens an object to {' or '.join(VERBS)}, not {verb!r}")
    return seal(key, TOKEN_PREFIX, f"{verb}.{object_key}", ttl, now)


def check(key: str | None, token: str, verb: str, object_key: str, now: float | None = None) -> str | None:
    """Why `token` does not open `object_key` to `verb`, or None when it does."""
    if not key:
        return "this server has no workers.token to check object tokens with"
    genuine = opened(key, token, TOKEN_PREFIX)
    if genuine is None:
        return "the object token is not valid"
    scope, expires = genuine
    if scope != f"{verb}.{object_key}":
        return f"the object token does not open {object_key} to {verb}"
    if expires < (time.time() if now is None else now):
        return "the object token has expired"
    return None
