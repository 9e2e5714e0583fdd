"""The Service: configuration, Redis, the stores and the orchestrator, shared by web, worker and scheduler.

Parts are built on first use, so a worker process does not load the engine or the definitions.
"""
from __future__ import annotations

from functools import cached_property

from ..config import Config
from ..store.connection import connect, connect_binary

__all__ = ["Service"]


class Service:
    def __init__(self, config: Config, redis=None):
        self.config = config
        self.redis = redis if redis is not None else connect(config.redis_url)
        self.rq_redis = connect_binary(config.redis_url)

    @cached_property
    def jobs(self):
        from ..store.jobs import JobStore
        return JobStore(self.redis)

    @cached_property
    def logs(self):
        from ..store.logs import LogStore
        return LogStore(self.redis)

    @cached_property
    def definitions(self):
        from ..store.definitions import Definitions
        return Definitions(self.redis)

    @cached_property
    def workers(self):
        from ..store.workers import WorkerRegistry
        return WorkerRegistry(self.redis, self.config.lost_after)

    @cached_property
    def contexts(self):
        from .contexts import Contexts
        return Contexts(self)

    @cached_property
    def orchestrator(self):
        from .orchestrator import Orchestrator
        return Orchestrator(self)

    def post(self, job_id: str, event) -> None:
        """Queue an event for the orchestrator (used by processes that do not apply events themselves)."""
        from ..store import keys
        from .messages import encode, event_message
        self.redis.rpush(keys.EVENTS, encode(event_message(job_id, event)))
