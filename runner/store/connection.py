"""One way to open Redis connections, with errors that say what to check."""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis

from ..errors import StromError

__all__ = ["connect", "connect_binary", "RedisUnavailable"]


class RedisUnavailable(StromError):
    status_hint = 503


def connect(url: str, check: bool = True) -> redis.Redis:
    """A client with string responses. `check` pings, raising RedisUnavailable with the URL (no password)."""
    # No read timeout: log followers and the orchestrator block on XREAD/BLMOVE for seconds at a time.
    client = redis.Redis.from_url(url, decode_responses=True, health_check_interval=30, socket_timeout=None)
    if check:
        try:
            client.ping()
        except redis.RedisError as exc:
            raise RedisUnavailable(f"cannot reach Redis at {_safe(url)} ({str(exc).rstrip('.')}); start "
                                   f"redis-server or set STROM_REDIS_URL") from exc
    return client


def _safe(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def connect_binary(url: str) -> redis.Redis:
    """A client returning bytes, as RQ needs (its job payloads are compressed)."""
    return redis.Redis.from_url(url, socket_timeout=None)
