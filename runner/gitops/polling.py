"""Reconcile branch heads: a push whose webhook never arrived still produces its run, once.

Each poll compares the followed branches' heads with the heads last seen (updated by every
processed push too) and stores a push event for each branch that moved. The event's delivery id
is the branch and commit, and run ids are derived from the commit, so a push seen by a webhook and
by a poll starts its runs once. The first poll of a workspace only records the heads.

A push to a hosted workspace moves its branch before Strom stores the push's events, so the poll
skips a hosted workspace while a push to it is in flight (`push_started` .. `push_finished`): it
would otherwise store a second event for that push, or run one pushed with `-o strom.skip`. A
push whose server died half-way is given up after `PUSH_GRACE`; the next poll then reconciles it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, cast

from ..forges.event import EventKind, EventSource, RepoEvent
from ..spec.globs import included
from ..store import keys

if TYPE_CHECKING:
    from redis import Redis

    from ..runs.service import Service
    from ..workspace_config import WorkspaceConfig

__all__ = ["PUSH_GRACE", "poll_workspace", "push_finished", "push_started"]

log = logging.getLogger("strom.poll")
PUSH_GRACE = 600.0  # seconds: longer than any push a live server serves


def push_started(redis: Redis, workspace: str, push: str) -> None:
    """Mark `push` in flight, before git may move a ref."""
    redis.zadd(keys.pushes(workspace), {push: time.time() + PUSH_GRACE})


def push_finished(redis: Redis, workspace: str, push: str) -> None:
    """After the push's events and heads are stored (or it was refused)."""
    redis.zrem(keys.pushes(workspace), push)


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
