"""Timers: runs whose deadline passed get a Tick, and delayed work (retry backoffs) is released when due."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

from redis.exceptions import WatchError

from ..engine.events import Tick
from ..engine.status import StepStatus
from ..engine.work import StepWork
from ..runs import messages
from ..runs.effects import enqueue_step
from ..runs.messages import MessageKind
from ..store import keys
from .consumer import handle_message

if TYPE_CHECKING:
    from ..runs.service import Service

__all__ = ["Timers"]

BATCH = 200  # due entries handled per pass


class Timers:
    """The service's client decodes responses (`connect`): what Redis answers is str, as the casts below say."""

    def __init__(self, service: Service):
        self.service = service
        self.redis = service.redis

    def fire(self, now: float) -> None:
        self.wake_due(now)
        self.release_delayed(now)

    def next_due(self, now: float) -> float:
        """Seconds until the earliest timer (at most half a second: sweeps and new timers are looked at too)."""
        upcoming = [now + 0.5]
        for key in (keys.WAKE, keys.DELAYED):
            first = cast("list[tuple[str, float]]", self.redis.zrange(key, 0, 0, withscores=True))
            if first:
                upcoming.append(first[0][1])
        return max(0.01, min(upcoming) - time.time())

    def wake_due(self, now: float) -> None:
        for job_id in cast("list[str]", self.redis.zrangebyscore(keys.WAKE, "-inf", now, start=0, num=BATCH)):
            if self.service.orchestrator.try_apply(job_id, Tick(), now) is None:
                self.redis.zrem(keys.WAKE, job_id)

    def release_delayed(self, now: float) -> None:
        for raw in cast("list[str]", self.redis.zrangebyscore(keys.DELAYED, "-inf", now, start=0, num=BATCH)):
            message = messages.decode(raw)
            if messages.message_kind(message["kind"]) is MessageKind.DISPATCH:
                self._release_dispatch(raw, StepWork.from_dict(message["work"]), now)
            else:
                handle_message(self.service, message)
                self.redis.zrem(keys.DELAYED, raw)

    def _release_dispatch(self, raw: str, work: StepWork, now: float) -> None:
        state = self.service.runs.load(work.job_id)
        run = state.steps.get(work.step) if state else None
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(keys.DELAYED)
                if pipe.zscore(keys.DELAYED, raw) is None:
                    return
                pipe.multi()
                pipe.zrem(keys.DELAYED, raw)
                if run is not None and run.status is StepStatus.QUEUED and run.attempt == work.attempt:
                    enqueue_step(pipe, self.redis, work, now)
                pipe.execute()
            except WatchError:
                return
