"""Live workers: who offers which queues, kept alive by heartbeats."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

from . import keys

if TYPE_CHECKING:
    from redis import Redis
    from redis.client import Pipeline

__all__ = ["WorkerInfo", "WorkerRegistry", "installation_id", "record_health"]


def installation_id(redis: Redis) -> str:
    """The id of the installation whose Redis this is (made by the first process to ask): what it owns on a
    shared host, such as a Docker engine's containers, carries it, so two installations leave each other's alone."""
    redis.set(keys.INSTALLATION, os.urandom(6).hex(), nx=True)
    return cast("str", redis.get(keys.INSTALLATION))


def record_health(pipe: Pipeline, name: str, kind: str, health: Mapping[str, Any]) -> None:
    """Store the health of scheduler or worker process `name` (its loops, whether Redis answers it)."""
    pipe.hset(keys.PROCESSES, name, json.dumps({"name": name, "kind": kind, "at": time.time(), **health}))


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    abilities: tuple[str, ...]
    tags: tuple[str, ...]
    queues: tuple[str, ...]
    concurrency: int
    host: str
    pid: int
    started_at: float

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> WorkerInfo:
        data = json.loads(raw)
        for key in ("abilities", "tags", "queues"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


LOST_KEPT = 86400.0  # seconds a lost worker is remembered


class WorkerRegistry:
    def __init__(self, redis: Redis, lost_after: float):
        self.redis = redis
        self.lost_after = lost_after

    def beat(
        self,
        info: WorkerInfo,
        owed: list[tuple[str, str, int]],
        health: Mapping[str, Any] | None = None,
        check_cancel: Sequence[str] = (),
        also: Callable[[Pipeline], None] | None = None,
    ) -> list[str]:
        """Mark the worker alive for `lost_after`, and each attempt (job, step, attempt) whose end it still
        owes to Redis; record its health; stage `also` (its RQ runners' heartbeats); answer which of the
        `check_cancel` step keys have been cancelled meanwhile."""
        ttl = max(1, int(self.lost_after * 1000))
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.WORKERS, info.name, info.to_json())
            pipe.set(keys.worker_alive(info.name), "1", px=ttl)
            if health is not None:
                record_health(pipe, info.name, "worker", health)
            for job_id, step, attempt in owed:
                pipe.set(keys.owed(job_id, step, attempt), info.name, px=ttl)
            if also is not None:
                also(pipe)
            for key in check_cancel:
                pipe.exists(keys.cancel_flag(*keys.parse_step_key(key)))
            answers = pipe.execute()
        flags = answers[len(answers) - len(check_cancel) :] if check_cancel else []
        return [key for key, flag in zip(check_cancel, flags) if flag]

    def leave(self, name: str) -> None:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hdel(keys.WORKERS, name)
            pipe.hdel(keys.PROCESSES, name)
            pipe.delete(keys.worker_alive(name))
            pipe.execute()

    def processes(self, now: float) -> list[dict[str, Any]]:
        """The health records of schedulers and workers that reported within `lost_after`."""
        records = [json.loads(raw) for raw in self.redis.hvals(keys.PROCESSES)]
        stale = [r["name"] for r in records if now - float(r.get("at", 0)) > 2 * self.lost_after]
        if stale:
            self.redis.hdel(keys.PROCESSES, *stale)
        return sorted((r for r in records if r["name"] not in stale), key=lambda r: r["name"])

    def live(self, now: float | None = None) -> list[WorkerInfo]:
        """The workers whose heartbeat is current. One that stopped beating without leaving (killed, its host
        gone) is dropped from the registry and remembered for a day as lost (`lost`)."""
        infos = [WorkerInfo.from_json(raw) for raw in self.redis.hvals(keys.WORKERS)]
        if not infos:
            return []
        alive = self.redis.mget([keys.worker_alive(i.name) for i in infos])
        dead = [i for i, flag in zip(infos, alive) if not flag]
        if dead:
            now = time.time() if now is None else now
            with self.redis.pipeline() as pipe:
                pipe.hdel(keys.WORKERS, *[i.name for i in dead])
                pipe.zadd(keys.LOST_WORKERS, {i.to_json(): now for i in dead})
                pipe.zremrangebyscore(keys.LOST_WORKERS, "-inf", now - LOST_KEPT)
                pipe.execute()
        return [i for i, flag in zip(infos, alive) if flag]

    def lost(self, now: float | None = None) -> list[tuple[WorkerInfo, float]]:
        """Workers found gone without leaving in the last day, newest first, with when that was noticed."""
        since = (time.time() if now is None else now) - LOST_KEPT
        found = cast(
            "list[tuple[str, float]]", self.redis.zrevrangebyscore(keys.LOST_WORKERS, "+inf", since, withscores=True)
        )
        return [(WorkerInfo.from_json(raw), at) for raw, at in found]
