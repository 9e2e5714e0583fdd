"""The Service: configuration, Redis, the stores and the orchestrator, shared by web, worker and scheduler.

Parts are built on first use, so a worker process does not load the engine or the definitions.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..store.connection import connect, connect_binary

if TYPE_CHECKING:
    from redis import Redis

    from ..engine.events import Event
    from ..forges.api import ForgeApi
    from ..git.repos import Repos
    from ..store.definitions import Definitions
    from ..store.log_archive import LogArchive
    from ..store.logs import LogStore
    from ..store.objects import ObjectStore
    from ..store.pauses import Pauses
    from ..store.repo_events import RepoEventStore
    from ..store.run_tokens import RunTokens
    from ..store.runs import RunStore
    from ..store.task_states import TaskStates
    from ..store.workers import WorkerRegistry
    from ..workspace_config import WorkspaceConfig
    from .checkout import Checkouts
    from .contexts import Contexts
    from .libraries import Libraries
    from .orchestrator import Orchestrator

__all__ = ["Service"]


class Service:
    def __init__(self, config: Config, redis: Redis | None = None):
        self.config = config
        self.redis = redis if redis is not None else connect(config.redis_url)
        self.rq_redis = connect_binary(config.redis_url)

    @cached_property
    def runs(self) -> RunStore:
        from ..store.runs import RunStore

        return RunStore(self.redis)

    @cached_property
    def follower(self) -> Redis:
        """The client that streams block on (log lines, run changes): its read timeout outlasts their waits."""
        from ..store.connection import READ_TIMEOUT

        return connect(self.config.redis_url, False, READ_TIMEOUT)

    @cached_property
    def logs(self) -> LogStore:
        from ..store.logs import LogStore

        return LogStore(self.redis, following=lambda: self.follower, archived=lambda job: self.log_archive.lines(job))

    @cached_property
    def log_archive(self) -> LogArchive:
        from ..store.log_archive import LogArchive

        return LogArchive(self.redis, self.objects)

    @cached_property
    def definitions(self) -> Definitions:
        from ..store.definitions import Definitions

        return Definitions(self.redis, limits=self.config.spec_limits, workspaces=self.config.workspaces)

    @cached_property
    def workers(self) -> WorkerRegistry:
        from ..store.workers import WorkerRegistry

        return WorkerRegistry(self.redis, self.config.lost_after)

    @cached_property
    def repo_events(self) -> RepoEventStore:
        from ..store.repo_events import RepoEventStore

        return RepoEventStore(self.redis, delivery_ttl=self.config.retention_max_age)

    @cached_property
    def pauses(self) -> Pauses:
        from ..store.pauses import Pauses

        return Pauses(self.redis)

    @cached_property
    def run_tokens(self) -> RunTokens:
        from ..store.run_tokens import RunTokens

        return RunTokens(self.redis)

    @cached_property
    def task_states(self) -> TaskStates:
        from ..store.task_states import TaskStates

        return TaskStates(self.redis, self.config.state_max_snapshots)

    @cached_property
    def objects(self) -> ObjectStore:
        """Files kept besides Redis: in the bucket of `storage:`, else in the data directory."""
        from ..store.objects import LocalObjects, S3Objects

        if self.config.storage is not None:
            return S3Objects(self.config.storage)
        return LocalObjects(self.config.data_dir / "objects")

    @cached_property
    def worker_objects(self) -> ObjectStore:
        """The objects as a worker reaches them: through the web process when it names one to reach
        (`workers.server_url`: a worker on another machine), else on this disk."""
        if self.config.worker_server_url:
            from ..store.objects import RemoteObjects

            return RemoteObjects(self.config.worker_server_url, self.config.worker_token)
        return self.objects

    @cached_property
    def repos(self) -> Repos:
        from ..git.repos import Repos

        return Repos(self.config.data_dir)

    @cached_property
    def libraries(self) -> Libraries:
        from .libraries import Libraries

        return Libraries(self.config, lambda: self.repos)

    @cached_property
    def checkouts(self) -> Checkouts:
        from .checkout import Checkouts

        return Checkouts(self)

    @cached_property
    def contexts(self) -> Contexts:
        from .contexts import Contexts

        return Contexts(self)

    @cached_property
    def orchestrator(self) -> Orchestrator:
        from .orchestrator import Orchestrator

        return Orchestrator(self)

    def forge_api(self, ws: WorkspaceConfig | None) -> ForgeApi | None:
        """The forge API client of workspace config `ws`, or None when it reports nowhere."""
        if ws is None or not ws.forge or not ws.forge_api or not ws.forge_token or not ws.repo:
            return None
        apis: dict[str, ForgeApi] = self.__dict__.setdefault("_forge_apis", {})
        if ws.name not in apis:
            from ..forges.api import api_for

            apis[ws.name] = api_for(ws.forge, ws.forge_api, ws.forge_token, ws.repo)
        return apis[ws.name]

    def report(self, message: dict[str, Any]) -> None:
        """Queue a report for the forge (statuses and pull request comments)."""
        from ..store import keys
        from .messages import encode

        self.redis.rpush(keys.REPORTS, encode(message))

    def post(self, job_id: str, event: Event) -> None:
        """Queue an event for the orchestrator (used by processes that do not apply events themselves)."""
        from ..store import keys
        from .messages import encode, event_message

        self.redis.rpush(keys.EVENTS, encode(event_message(job_id, event)))
