"""A short Redis lock: SET NX with an expiry, released only by its holder."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import StromError

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["LockTimeout", "redis_lock"]

_RELEASE = """
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0
"""


class LockTimeout(StromError):
    status_hint = 503


@contextmanager
def redis_lock(redis: Redis, key: str, ttl_ms: int = 15_000, wait: float = 15.0) -> Iterator[None]:
    """Hold `key` for the block (at most `ttl_ms`); LockTimeout if it stays taken for `wait` seconds."""
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    while not redis.set(key, token, nx=True, px=ttl_ms):
        if time.monotonic() > deadline:
            raise LockTimeout(f"{key} stayed locked for {wait:.0f}s")
        time.sleep(0.02)
    try:
        yield
    finally:
        redis.eval(_RELEASE, 1, key, token)
