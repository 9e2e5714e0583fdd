"""`retry:` blocks on actions, steps and tasks."""

from __future__ import annotations

from .fields import RETRY_FIELDS
from .model import Backoff, Retry
from .reader import Reader

__all__ = ["DEFAULT_ATTEMPTS", "DEFAULT_DELAY", "build_retry"]

DEFAULT_ATTEMPTS = 3  # a retry block that names no max_attempts
DEFAULT_DELAY = 30.0  # a retry that names no delay waits this long (as Strøm documents); `delay: 0s` for none
MAX_DELAY = 3600.0


def build_retry(r: Reader) -> Retry | None:
    value = r.raw("retry", None)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= 10:
            r.error("retry", "out-of-range", f"retry must be between 1 and 10 attempts, got {value}")
            return None
        return Retry(max_attempts=value, delay=DEFAULT_DELAY)
    data = r.mapping("retry", "{ max_attempts: 3, delay: 10s, backoff: exponential }")
    if data is None:
        return None
    sub = Reader(data, r.problems, f"{r.what}: retry")
    sub.check_keys(RETRY_FIELDS)
    attempts = sub.integer("max_attempts", 1, 10)
    return Retry(
        max_attempts=attempts if attempts is not None else DEFAULT_ATTEMPTS,
        delay=(sub.duration("delay", MAX_DELAY, "1h") or 0.0) if sub.has("delay") else DEFAULT_DELAY,
        backoff=sub.member("backoff", Backoff, Backoff.FIXED),
        jitter=sub.boolean("jitter"),
    )
