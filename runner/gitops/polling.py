"""Reconcile branch heads: a push whose webhook never arrived still produces its run, once.

Each poll compares the followed branches' heads with the heads last seen (updated by every
processed push too) and stores a push event for each branch that moved. The event's delivery id
is the branch and commit, and run ids are derived from the commit, so a push seen by a webhook and
by a poll starts its runs once. The first poll of a workspace only records the heads.

A push to a hosted workspace moves its branch before Strom stores the push's events, so the poll
skips a hosted workspace while a push to it is in flight (`PushInFlight`): it would otherwise
store a second event for that push, or run one pushed with `-o strom.skip`. The server renews
the mark while it serves the push; a push whose server died is given up `PUSH_GRACE` after its
last renewal, and the next poll reconciles it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, cast

from redis.exceptions import RedisError

from ..forges.event import EventKind, EventSource, RepoEvent
from ..spec.globs import included
from ..store import keys

if TYPE_CHECKING:
    from redis import Redis

    from ..runs.service import Service
    from ..workspace_config import WorkspaceConfig

__all__ = ["PUSH_GRACE", "PUSH_LONGEST", "PUSH_RENEW", "PushInFlight", "poll_workspace"]

log = logging.getLogger("strom.poll")
PUSH_GRACE = 60.0  # seconds after its last renewal that a push is given up
PUSH_RENEW = 10.0
PUSH_LONGEST = 3600.0  # renewed no longer than this, should its server never finish it


class PushInFlight:
    """Marks `push` to `workspace` in flight from now (before git may move a ref) until `finish` (after its events
    and heads are stored, or it was refused), renewing the mark meanwhile."""

    def __init__(self, redis: Redis, workspace: str, push: str):
        self.redis, self.key, self.push = redis, keys.pushes(workspace), push
        self._done = threading.Event()
        self._lock = threading.Lock()  # a renewal never lands after `finish` removed the mark
        self._mark()
        self.renewer = threading.Thread(target=self._renew, name="push-in-flight", daemon=True)
        self.renewer.start()

    def _mark(self) -> None:
        with self._lock:
            if not self._done.is_set():
                self.redis.zadd(self.key, {self.push: time.time() + PUSH_GRACE})

    def _renew(self) -> None:
        end = time.monotonic() + PUSH_LONGEST
        while not self._done.wait(PUSH_RENEW) and time.monotonic() < end:
            try:
                self._mark()
            except RedisError:  # Redis is away: the next renewal tries again
                continue

    def finish(self) -> None:
        """Idempotent."""
        with self._lock:
            if self._done.is_set():
                return
            self._done.set()
        try:
            self.redis.zrem(self.key, self.push)
        except RedisError:  # Redis is away: the mark lapses PUSH_GRACE after its last renewal
            pass


def _push_in_flight(redis: Redis, workspace: str) -> bool:
    key = keys.pushes(workspace)
    with redis.pipeline() as pipe:
        pipe.zremrangebyscore(key, "-inf", time.time())
        pipe.zcard(key)
        return bool(pipe.execute()[1])


def poll_workspace(service: Service, ws: WorkspaceConfig) -> list[str]:
    """Store push events for the branches of `ws` that moved; returns their event ids."""
    mirror = service.repos.mirror(ws)
    heads = {b: s for b, s in mirror.remote_heads().items() if included(b, ws.branches)}
    redis = service.redis
    if ws.kind == "hosted" and _push_in_flight(redis, ws.name):  # only after reading the heads
        return []
    seen_key = keys.heads(ws.name)
    if not redis.exists(seen_key + ":polled"):
        with redis.pipeline() as pipe:
            if heads:
                pipe.hset(seen_key, mapping=heads)  # type: ignore[arg-type]  # redis's Mapping key is invariant
            pipe.set(seen_key + ":polled", "1")
            pipe.execute()
        return []
    known = cast("dict[str, str]", redis.hgetall(seen_key))  # the client decodes responses (`connect`)
    created = []
    for branch, sha in sorted(heads.items()):
        if known.get(branch) == sha:
            continue
        event = RepoEvent(
            source=EventSource.POLL,
            kind=EventKind.PUSH,
            repo=ws.repo or ws.name,
            delivery=f"{ws.name}:{branch}:{sha}",
            forge_event="poll",
            ref=f"refs/heads/{branch}",
            branch=branch,
            sha=sha,
            before=known.get(branch),
            actor="strom-poll",
            created=branch not in known,
        )
        event_id, duplicate = service.repo_events.receive(ws.name, event.to_dict())
        if not duplicate:
            log.info("workspace %s: branch %s moved to %s (event %s)", ws.name, branch, sha[:12], event_id)
            created.append(event_id)
    return created
