"""Rate limits on the runs people start by hand (the API, the UI, the CLI through the API): each token,
and each workspace whoever asks, may start so many per window (`rate_limits:`, 30 a minute by default).
Over a limit, the answer is 429 with Retry-After. Repository events (webhooks, pushes, polls, cron) are
never limited: they are stored, then processed.

The windows are the `limits` library's moving windows in Strom's Redis, shared by every web process.
"""

from __future__ import annotations

import math
import time

from flask import current_app
from werkzeug.exceptions import TooManyRequests

from runner.store import keys

from .context import current_service

__all__ = ["count_start"]


class _Limits:
    def __init__(self, redis, per_token: str | None, per_workspace: str | None):
        from limits import parse
        from limits.storage import RedisStorage
        from limits.strategies import MovingWindowRateLimiter

        storage = RedisStorage("redis://", connection_pool=redis.connection_pool, key_prefix=keys.RATE_LIMITS)
        self.limiter = MovingWindowRateLimiter(storage)
        rates = (("token", per_token), ("workspace", per_workspace))
        self.rules = [(parse(rate), kind) for kind, rate in rates if rate]


def _limits() -> _Limits:
    found = current_app.extensions.get("strom_rate_limits")
    if found is None:
        config = current_service().config
        found = _Limits(current_service().redis, config.rate_per_token, config.rate_per_workspace)
        current_app.extensions["strom_rate_limits"] = found
    return found


def count_start(token: str, workspace: str) -> None:
    """Count one run started by hand by `token` in `workspace`; TooManyRequests (with Retry-After) when either
    is at its limit, and then nothing is counted. A workspace the server does not have counts nothing (the request
    is answered 404 after this): no key is made per made-up name."""
    if workspace not in current_service().config.workspaces:
        return
    limits = _limits()
    keyed = [(item, kind, token if kind == "token" else workspace) for item, kind in limits.rules]
    for item, kind, name in keyed:
        if not limits.limiter.test(item, kind, name):
            reset = limits.limiter.get_window_stats(item, kind, name).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            raise TooManyRequests(
                description=(
                    f"too many runs started by hand: {kind} {name!r} may start {item}; try again in {wait} s "
                    "(rate_limits in the server configuration)"
                ),
                retry_after=wait,
            )
    for item, kind, name in keyed:
        limits.limiter.hit(item, kind, name)
