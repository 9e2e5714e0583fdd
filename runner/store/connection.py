"""One way to open Redis connections, with errors that say what to check."""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from ..errors import StromError

__all__ = ["connect", "connect_binary", "RedisUnavailable", "is_outage"]

_OUTAGE_REPLIES = ("LOADING", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN")
COMMAND_TIMEOUT = 10.0  # a command that gets no answer in this long fails (a half-open connection)
READ_TIMEOUT = 90.0  # for the client that blocks on log streams (at most 60 s at a time)


class RedisUnavailable(StromError):
    status_hint = 503


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` means Redis cannot be used right now (rather than a bug or bad data)."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, RedisUnavailable)):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(_OUTAGE_REPLIES)


# Short connection attempts and a few quick retries inside each call: the loops above wait out longer
# outages themselves. No read waits forever: a half-open connection is noticed by the read timeout
# (blocking commands block for a second or two, except log streams, which use their own client).
def _options(url: str, read_timeout: float) -> dict:
    options = dict(socket_connect_timeout=5, socket_timeout=read_timeout, health_check_interval=30,
                   retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2))
    if not url.startswith("unix:"):
        options["socket_keepalive"] = True
    return options


def connect(url: str, check: bool = True, read_timeout: float = COMMAND_TIMEOUT) -> redis.Redis:
    """A client with string responses. `check` pings, raising RedisUnavailable with the URL (no password)."""
    client = redis.Redis.from_url(url, decode_responses=True, **_options(url, read_timeout))
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
    return redis.Redis.from_url(url, **_options(url, COMMAND_TIMEOUT))
