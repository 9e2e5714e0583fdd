"""Short-lived tokens the web process checks without storing them: an HMAC-SHA256 over what the token says,
keyed with `workers.token`. Commit snapshots (runner/git/snapshot_tokens.py) and objects of the storage
(runner/store/object_tokens.py) hand them to pods; both start with SCOPED_PREFIX, which the API knows as a
scoped token and never takes for one of its own."""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["SCOPED_PREFIX", "sign"]

SCOPED_PREFIX = "strom-snap."


def sign(key: str, body: str) -> str:
    digest = hmac.new(key.encode(), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
