"""Task state snapshots: what a task's steps wrote with `STATE:` lines and to `$STATE_OUT_DIR`, kept for its next
runs. One Redis list per task, newest first, of snapshots as JSON:

    {"id", "job", "step", "created", "data": {...} | null, "files": "state/<id>.tar.gz" | null, "size"}

A snapshot is kept in the same transaction as the step's end (a `KeepState` command); the oldest beyond
`max_snapshots` leave the list there too, their files queued on `strom:state:doomed` for the retention pass
to delete (runner/service/retention.py)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import keys
from .objects import ObjectError

if TYPE_CHECKING:
    from redis import Redis
    from redis.client import Pipeline

    from .objects import ObjectStore

__all__ = ["DEFAULT_MAX_SNAPSHOTS", "TaskStates"]

DEFAULT_MAX_SNAPSHOTS = 5

_KEEP = """
redis.call("LPUSH", KEYS[1], ARGV[1])
local max = tonumber(ARGV[2])
for _, item in ipairs(redis.call("LRANGE", KEYS[1], max, -1)) do
  local ok, snapshot = pcall(cjson.decode, item)
  if ok and type(snapshot) == "table" and type(snapshot.files) == "string" then
    redis.call("RPUSH", KEYS[2], snapshot.files)
  end
end
redis.call("LTRIM", KEYS[1], 0, max - 1)
return 1
"""


class TaskStates:
    def __init__(self, redis: Redis, max_snapshots: int = DEFAULT_MAX_SNAPSHOTS):
        self.redis = redis
        self.max_snapshots = max(1, int(max_snapshots))
        self._keep = redis.register_script(_KEEP)

    def stage_keep(self, pipe: Pipeline, workspace: str, task: str, snapshot: dict[str, Any]) -> None:
        """Keep `snapshot` as the task's newest (inside `pipe`, the transaction of the step's end)."""
        self._keep(
            keys=[keys.task_state(workspace, task), keys.STATE_DOOMED],
            args=[json.dumps(snapshot, separators=(",", ":")), self.max_snapshots],
            client=pipe,
        )

    def keep(self, workspace: str, task: str, snapshot: dict[str, Any]) -> None:
        """Keep `snapshot` as the task's newest (an upload: not a step's end)."""
        with self.redis.pipeline(transaction=True) as pipe:
            self.stage_keep(pipe, workspace, task, snapshot)
            pipe.execute()

    def latest(self, workspace: str, task: str) -> dict[str, Any] | None:
        return _decode(self.redis.lindex(keys.task_state(workspace, task), 0))

    def latest_of(self, workspace: str, tasks: list[str]) -> dict[str, dict[str, Any]]:
        """The newest snapshot of each of `tasks` that has one (one round trip)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for task in tasks:
                pipe.lindex(keys.task_state(workspace, task), 0)
            found = pipe.execute()
        return {task: snapshot for task, raw in zip(tasks, found) if (snapshot := _decode(raw)) is not None}

    def history(self, workspace: str, task: str) -> list[dict[str, Any]]:
        """The task's snapshots, newest first."""
        raw = self.redis.lrange(keys.task_state(workspace, task), 0, -1)
        return [snapshot for snapshot in map(_decode, raw) if snapshot is not None]

    def get(self, workspace: str, task: str, snapshot_id: str) -> dict[str, Any] | None:
        return next((s for s in self.history(workspace, task) if s.get("id") == snapshot_id), None)

    def delete_doomed(self, objects: ObjectStore, batch: int = 100) -> int:
        """Delete the files of snapshots retention dropped; how many."""
        done = 0
        while done < batch:
            key = self.redis.lpop(keys.STATE_DOOMED)
            if not isinstance(key, (str, bytes)):
                break
            try:
                objects.delete(key.decode() if isinstance(key, bytes) else key)
            except ObjectError:  # not a key Strom writes: nothing to delete
                pass
            done += 1
        return done


def _decode(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
