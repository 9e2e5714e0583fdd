"""The orchestrator's inbox: events and requests from workers and other runs, applied one by one.

Messages move from the shared list to this consumer's own list while they are handled, so a
consumer that dies mid-message leaves it where a sweep puts it back for another consumer.
"""
from __future__ import annotations

import logging
import threading
import time

from ..engine.work import StepWork
from ..store import keys
from . import messages, runs
from .effects import enqueue_step

__all__ = ["EventConsumer", "handle_message"]

log = logging.getLogger("strom.orchestrator")


def handle_message(service, message: dict) -> None:
    kind = message.get("kind")
    if kind == messages.EVENT:
        service.orchestrator.try_apply(message["job"], message["event"])
    elif kind == messages.CREATE_CHILD:
        runs.create_child(service, message)
    elif kind == messages.HOOKS:
        runs.create_hooks(service, message)
    elif kind == messages.RETRY:
        runs.retry(service, message)
    elif kind == messages.DISPATCH:
        with service.redis.pipeline() as pipe:
            enqueue_step(pipe, service.redis, StepWork.from_dict(message["work"]), time.time())
            pipe.execute()
    else:
        log.warning("ignoring a message of unknown kind %r", kind)


class EventConsumer:
    def __init__(self, service, name: str):
        self.service = service
        self.name = name
        self.busy = keys.events_busy(name)

    def recover(self) -> int:
        """Put back what this consumer held when it last stopped."""
        moved = 0
        while self.service.redis.lmove(self.busy, keys.EVENTS, "RIGHT", "LEFT") is not None:
            moved += 1
        return moved

    def run(self, stop: threading.Event) -> None:
        self.recover()
        redis = self.service.redis
        while not stop.is_set():
            try:
                raw = redis.blmove(keys.EVENTS, self.busy, 1, "LEFT", "RIGHT")
            except Exception:
                log.exception("reading events failed")
                stop.wait(1)
                continue
            if raw is None:
                continue
            try:
                handle_message(self.service, messages.decode(raw))
            except Exception:
                log.exception("handling %s failed", raw[:200])
            finally:
                redis.lrem(self.busy, 1, raw)
