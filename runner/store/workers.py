"""Live workers: who offers which queues, kept alive by heartbeats."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from . import keys

__all__ = ["WorkerInfo", "WorkerRegistry"]


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
    def from_json(cls, raw: str) -> "WorkerInfo":
        data = json.loads(raw)
        for key in ("abilities", "tags", "queues"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


class WorkerRegistry:
    def __init__(self, redis, lost_after: float):
        self.redis = redis
        self.lost_after = lost_after

    def beat(self, info: WorkerInfo, running: list[tuple[str, str, int]]) -> None:
        """Mark the worker and each of its running steps (job, step, attempt) alive for `lost_after`."""
        ttl = max(1, int(self.lost_after * 1000))
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.WORKERS, info.name, info.to_json())
            pipe.set(keys.worker_alive(info.name), "1", px=ttl)
            for job_id, step, attempt in running:
                pipe.set(keys.heartbeat(job_id, step, attempt), info.name, px=ttl)
            pipe.execute()

    def leave(self, name: str) -> None:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hdel(keys.WORKERS, name)
            pipe.delete(keys.worker_alive(name))
            pipe.execute()

    def live(self) -> list[WorkerInfo]:
        infos = [WorkerInfo.from_json(raw) for raw in self.redis.hvals(keys.WORKERS)]
        if not infos:
            return []
        alive = self.redis.mget([keys.worker_alive(i.name) for i in infos])
        dead = [i.name for i, flag in zip(infos, alive) if not flag]
        if dead:
            self.redis.hdel(keys.WORKERS, *dead)
        return [i for i, flag in zip(infos, alive) if flag]
