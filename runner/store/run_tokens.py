"""Tokens for the API from inside steps (a task with `api: true`): `strom-run.<run id>.<signature>`.

The signature is an HMAC-SHA256 of the rest with a key kept in Redis (made once, by whichever process
needs it first), so every web process and worker checks and issues the same tokens without storing
any. A token names its run; what it may do, and until when, is decided by that run when it is used
(webhooks/access/tokens.py): its workspace only, and only while the run has not ended.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading

from redis import Redis

from . import keys

__all__ = ["PREFIX", "RunTokens"]

PREFIX = "strom-run."


class RunTokens:
    def __init__(self, redis: Redis):
        self.redis = redis
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def _secret(self) -> bytes:
        with self._lock:
            if self._key is None:
                self.redis.set(keys.RUN_TOKEN_KEY, secrets.token_hex(32), nx=True)
                value = self.redis.get(keys.RUN_TOKEN_KEY)
                self._key = (value if isinstance(value, bytes) else str(value).encode()) if value else None
            if self._key is None:
                raise RuntimeError("the run token key is missing from Redis")
            return self._key

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._secret(), body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def issue(self, run_id: str) -> str:
        body = f"{PREFIX}{run_id}"
        return f"{body}.{self._sign(body)}"

    def run_of(self, token: str) -> str | None:
        """The run a genuine token names, or None."""
        body, _, signature = token.rpartition(".")
        run_id = body[len(PREFIX) :]
        if not body.startswith(PREFIX) or not run_id or len(token) > 200:
            return None
        return run_id if hmac.compare_digest(self._sign(body).encode(), signature.encode()) else None
