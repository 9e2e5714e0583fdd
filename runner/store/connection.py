"""One way to open Redis connections, with errors that say what to check.

URLs: `redis://`, `rediss://` (TLS; `?ssl_ca_certs=…&ssl_cert_reqs=required`), `unix://`, and Redis Sentinel
as `redis+sentinel://[:PASSWORD@]HOST[:PORT][,HOST[:PORT]…]/SERVICE[/DB]` (`rediss+sentinel://` for TLS;
`?sentinel_password=…` when the sentinels have a password of their own). Through Sentinel, every
connection goes to the current master and follows a failover.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypedDict, TypeVar, Unpack
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from ..errors import StromError

__all__ = ["SENTINEL_SCHEMES", "RedisUnavailable", "connect", "connect_binary", "is_outage", "patiently"]

T = TypeVar("T")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_PORT = 26379

_OUTAGE_REPLIES = ("LOADING", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN")
COMMAND_TIMEOUT = 10.0  # a command that gets no answer in this long fails (a half-open connection)
READ_TIMEOUT = 90.0  # for the client that blocks on log streams (at most 60 s at a time)


class _ClientOptions(TypedDict, total=False):
    """What `_options` sets (and `connect` adds) for a client: passed on to redis-py as they are."""

    socket_connect_timeout: float
    socket_timeout: float
    health_check_interval: int
    retry: Retry
    socket_keepalive: bool
    decode_responses: bool


class RedisUnavailable(StromError):
    status_hint = 503


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` means Redis cannot be used right now (rather than a bug or bad data)."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, RedisUnavailable)):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(_OUTAGE_REPLIES)


def patiently(call: Callable[[], T], patience: float, stop: threading.Event | None = None) -> T:
    """`call()`, tried again every half second while Redis is unreachable, for up to `patience` seconds (or until
    `stop` is set); then its last error is raised."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_outage(exc) or time.monotonic() > deadline:
                raise
            if stop is None:
                time.sleep(0.5)
            elif stop.wait(0.5):
                raise


# Short connection attempts and a few quick retries inside each call: the loops above wait out longer
# outages themselves. No read waits forever: a half-open connection is noticed by the read timeout
# (blocking commands block for a second or two, except log streams, which use their own client).
def _options(url: str, read_timeout: float) -> _ClientOptions:
    options = _ClientOptions(
        socket_connect_timeout=5,
        socket_timeout=read_timeout,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
    )
    if not url.startswith("unix:"):
        options["socket_keepalive"] = True
    return options


def connect(url: str, check: bool = True, read_timeout: float = COMMAND_TIMEOUT) -> redis.Redis:
    """A client with string responses. `check` pings, raising RedisUnavailable with the URL (no password)."""
    options: _ClientOptions = {**_options(url, read_timeout), "decode_responses": True}
    client = _client(url, **options)
    if check:
        try:
            client.ping()
        except redis.RedisError as exc:
            reason = str(exc).split(" : ")[0].rstrip(".")  # a Sentinel's error goes on with a client's repr
            raise RedisUnavailable(
                f"cannot reach Redis at {_safe(url)} ({reason}); start redis-server or set STROM_REDIS_URL"
            ) from exc
    return client


def _safe(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        url = urlunsplit(parts._replace(netloc=netloc))
    return url.split("?", 1)[0]


def connect_binary(url: str) -> redis.Redis:
    """A client returning bytes, as RQ needs (its job payloads are compressed)."""
    return _client(url, **_options(url, COMMAND_TIMEOUT))


def _client(url: str, **options: Unpack[_ClientOptions]) -> redis.Redis:
    if urlsplit(url).scheme in SENTINEL_SCHEMES:
        return _through_sentinel(url, **options)
    return redis.Redis.from_url(url, **options)


def _through_sentinel(url: str, **options: Unpack[_ClientOptions]) -> redis.Redis:
    """A client of the master that the sentinels in `url` name for its service."""
    parts = urlsplit(url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not hostlist or not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise RedisUnavailable(
            f"a Sentinel URL is redis+sentinel://[:PASSWORD@]HOST[:PORT][,HOST[:PORT]]/SERVICE[/DB], not {_safe(url)}"
        )
    sentinels: list[tuple[str, int]] = []
    for host in hostlist.split(","):
        name, _, port = host.rpartition(":") if host.rpartition(":")[2].isdigit() else (host, "", "")
        sentinels.append((name.strip("[]"), int(port or SENTINEL_PORT)))
    query = dict(parse_qsl(parts.query))
    tls: dict[str, bool | str] = {"ssl": True} if parts.scheme.startswith("rediss") else {}
    tls.update(
        {k: v for k, v in query.items() if k in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")}
    )
    sentinel_auth = {"password": query["sentinel_password"]} if "sentinel_password" in query else {}
    connection = {k: v for k, v in options.items() if k in ("socket_connect_timeout", "socket_keepalive")}
    asking = {**connection, **tls, **sentinel_auth, "socket_timeout": 5, "retry": Retry(NoBackoff(), 0)}
    # `asking` is what is said to the sentinels; the rest goes to the master
    sentinel = Sentinel(sentinels, sentinel_kwargs=asking)  # type: ignore[no-untyped-call]  # unannotated in redis-py
    master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]  # unannotated in redis-py
        path[0],
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
        **tls,
        **options,
    )
    return master
