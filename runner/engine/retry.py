"""When the next attempt of a failed step may start."""

from __future__ import annotations

import hashlib

from ..spec.model import Backoff, Retry

__all__ = ["BACKOFF_CAP", "retry_delay"]

BACKOFF_CAP = 64  # exponential delays stop growing at 64x the base delay
JITTER = 0.25


def retry_delay(policy: Retry, attempt: int, seed: str = "") -> float:
    """Delay before attempt `attempt + 1`, after `attempt` attempts failed.

    Jitter is a deterministic function of `seed` (job, step, attempt) so the decision stays pure.
    """
    base = policy.delay
    if policy.backoff == Backoff.EXPONENTIAL:
        base = policy.delay * min(2 ** max(attempt - 1, 0), BACKOFF_CAP)
    if policy.jitter and base > 0:
        digest = hashlib.sha256(f"{seed}:{attempt}".encode()).digest()
        fraction = int.from_bytes(digest[:8], "big") / 2**64  # 0 <= fraction < 1
        base *= 1 - JITTER + 2 * JITTER * fraction
    return base
