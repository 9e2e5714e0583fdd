"""Tasks and triggers people paused: a paused task's triggers, and a paused trigger, do not fire (cron
ticks, pushes, pull requests, comments, webhooks, job chains); each skipped firing is counted. Runs
started by hand still start.

strom:paused:<workspace>   hash "task:<name>" | "trigger:<name>" -> {"by", "at", "reason"} (JSON)
strom:skipped:<workspace>  hash of the same fields -> firings skipped since the pause
"""

from __future__ import annotations

import json
import time
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

from . import keys

if TYPE_CHECKING:
    from redis import Redis

    from ..spec.model import Trigger

__all__ = ["SEEN_FOR", "Pausable", "Pauses"]

SEEN_FOR = 86400  # seconds an occasion's skip is remembered, so that it is counted once


class Pausable(StrEnum):
    TASK = "task"
    TRIGGER = "trigger"


class Pauses:
    def __init__(self, redis: Redis):
        self.redis = redis

    def pause(self, workspace: str, kind: Pausable, name: str, by: str, reason: str | None = None) -> dict[str, Any]:
        record = {"by": by, "at": time.time(), "reason": reason}
        with self.redis.pipeline() as pipe:
            pipe.hset(keys.paused(workspace), f"{kind}:{name}", json.dumps(record))
            pipe.hdel(keys.skipped(workspace), f"{kind}:{name}")
            pipe.execute()
        return {**record, "skipped": 0}

    def resume(self, workspace: str, kind: Pausable, name: str) -> bool:
        """Whether it was paused."""
        with self.redis.pipeline() as pipe:
            pipe.hdel(keys.paused(workspace), f"{kind}:{name}")
            pipe.hdel(keys.skipped(workspace), f"{kind}:{name}")
            removed, _ = pipe.execute()
        return bool(removed)

    def of(self, workspace: str) -> dict[str, dict[str, Any]]:
        """ "task:<name>" / "trigger:<name>" -> {by, at, reason, skipped} of everything paused in `workspace`."""
        with self.redis.pipeline() as pipe:
            pipe.hgetall(keys.paused(workspace))
            pipe.hgetall(keys.skipped(workspace))
            paused, skipped = cast("tuple[dict[str, str], dict[str, str]]", pipe.execute())
        return {field: {**json.loads(raw), "skipped": int(skipped.get(field, 0))} for field, raw in paused.items()}

    def why(self, workspace: str, trigger: Trigger, occasion: str) -> str | None:
        """Why `trigger` must not fire now ("task deploy paused by alice: freeze"), or None when neither it nor
        its task is paused. The skip is counted once per `occasion` (an event, a tick, a finished run), however
        many processes look at it."""
        fields = [f"{Pausable.TRIGGER}:{trigger.name}", f"{Pausable.TASK}:{trigger.task}"]
        for field, raw in zip(fields, cast("list[str | None]", self.redis.hmget(keys.paused(workspace), fields))):
            if raw is not None:
                record = json.loads(raw)
                if self.redis.set(keys.skip_seen(workspace, occasion, trigger.name), 1, nx=True, ex=SEEN_FOR):
                    self.redis.hincrby(keys.skipped(workspace), field, 1)
                kind, _, name = field.partition(":")
                reason = f": {record['reason']}" if record.get("reason") else ""
                return f"{kind} {name} paused by {record['by']}{reason}"
        return None
