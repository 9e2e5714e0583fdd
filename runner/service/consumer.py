"""The orchestrator's inbox: events and requests from workers and other runs, applied one by one.

Messages move from the shared list to this consumer's own list while they are handled, so a
consumer that dies mid-message leaves it where a sweep puts it back for another consumer.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from .. import runs
from ..engine.work import StepWork
from ..runs import messages
from ..runs.effects import enqueue_step
from ..runs.messages import MessageKind, message_kind
from ..store import keys
from ..store.connection import is_outage
from ..store.queues import BLOCK_SECONDS

if TYPE_CHECKING:
    from ..runs.service import Service

__all__ = ["EventConsumer", "QueueConsumer", "handle_message"]

log = logging.getLogger("strom.orchestrator")


def handle_message(service: Service, message: dict) -> None:
    kind = message.get("kind")
    known = message_kind(kind)
    if known is MessageKind.EVENT:
        service.orchestrator.try_apply(message["job"], message["event"])
    elif known is MessageKind.CREATE_CHILD:
        runs.create_child(service, message)
    elif known is MessageKind.HOOKS:
        runs.create_hooks(service, message)
    elif known is MessageKind.RETRY:
        runs.retry(service, message)
    elif known is MessageKind.RUN_FINISHED:
        from ..gitops.chains import after_run

        after_run(service, message["job"])
    elif known is MessageKind.INTAKE:
        service.redis.rpush(keys.INTAKE, message["event"])
    elif known is MessageKind.DISPATCH:
        with service.redis.pipeline() as pipe:
            enqueue_step(pipe, service.redis, StepWork.from_dict(message["work"]), time.time())
            pipe.execute()
    else:
        log.warning("ignoring a message of unknown kind %r", kind)


class QueueConsumer:
    """Takes items from `queue` one at a time, holding each on its own `busy` list while handling it.

    An item leaves `busy` only once handled. If Redis goes away while an item is handled, the item
    goes back to the head of the queue when Redis returns and is handled again (every handler is
    idempotent); if only its removal from `busy` failed, that is retried before the next item."""

    def __init__(self, redis, queue: str, busy: str, handle, label: str):
        self.redis = redis
        self.queue = queue
        self.busy = busy
        self.handle = handle
        self.label = label
        self._handled: str | None = None  # handled, but still on `busy`

    def recover(self) -> int:
        """Put back what this consumer held when it last stopped."""
        moved = 0
        while self.redis.lmove(self.busy, self.queue, "RIGHT", "LEFT") is not None:
            moved += 1
        return moved

    def one_pass(self) -> None:
        if self._handled is not None:
            self.redis.lrem(self.busy, 1, self._handled)
            self._handled = None
        # Whatever is still on `busy` was not handled: an outage cut its handling short, or the move
        # itself (a retried BLMOVE may have moved an item whose answer was lost). Hand it back first.
        self.recover()
        raw = self.redis.blmove(self.queue, self.busy, BLOCK_SECONDS, "LEFT", "RIGHT")
        if raw is None:
            return
        try:
            self.handle(raw)
        except Exception as exc:
            if is_outage(exc):
                raise  # it stays on `busy`, and goes back to the queue on the next pass
            log.exception("handling %s %s failed", self.label, raw[:200])
        self._handled = raw
        self.redis.lrem(self.busy, 1, raw)
        self._handled = None


class EventConsumer(QueueConsumer):
    def __init__(self, service: Service, name: str):
        super().__init__(
            service.redis,
            keys.EVENTS,
            keys.events_busy(name),
            lambda raw: handle_message(service, messages.decode(raw)),
            "events",
        )
        self.service = service
        self.name = name
