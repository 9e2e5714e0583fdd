"""Repository events as received: stored before they are acknowledged, then processed from a queue.

A record is `{"id", "workspace", "received_at", "status", "reason", "error", "runs", "attempts",
"event": <normalised event>, "extra": {...}}`; status moves queued -> done | ignored | waiting | failed.
It is kept in two keys: the small part that listings read and updates rewrite (the status and a
summary of the event), and the payload (the whole event and its extras, written once), so a
listing costs the same however large the payloads were.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from redis.exceptions import WatchError

from . import keys

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["DELIVERY_TTL", "STATUSES", "RepoEventStore"]

STATUSES = ("queued", "done", "ignored", "waiting", "failed")
SUMMARY = ("source", "kind", "ref", "sha", "actor", "delivery", "branch", "tag")  # of the event, in listings
DELIVERY_TTL = 30 * 86400  # as long as events are kept (retention.max_age), by default
DELETE_BATCH = 1000


# One round trip, atomic: a delivery seen before returns the first event's id and stores nothing.
_STORE = """
if ARGV[6] == "1" then
  local first = redis.call("GET", KEYS[1])
  if first then return first end
  redis.call("SET", KEYS[1], ARGV[1], "EX", ARGV[5])
end
redis.call("SET", KEYS[2], ARGV[2])
redis.call("SET", KEYS[7], ARGV[8])
redis.call("ZADD", KEYS[3], ARGV[3], ARGV[1])
redis.call("ZADD", KEYS[4], ARGV[3], ARGV[1])
redis.call("SADD", KEYS[6], ARGV[7])
if ARGV[4] == "1" then redis.call("RPUSH", KEYS[5], ARGV[1]) end
return false
"""


class RepoEventStore:
    """`redis` decodes responses (`connect`): what it answers is str."""

    def __init__(self, redis: Redis, delivery_ttl: float = DELIVERY_TTL):
        self.redis = redis
        self.delivery_ttl = max(1, int(delivery_ttl))  # a redelivery is recognised as long as events are kept
        self._store = redis.register_script(_STORE)

    def receive(
        self,
        workspace: str,
        event: Mapping[str, Any],
        *,
        extra: Mapping[str, Any] | None = None,
        ignored: str | None = None,
        now: float | None = None,
    ) -> tuple[str, bool]:
        """Store `event` and queue it for processing (unless `ignored`), in one atomic step.

        Returns (event id, duplicate): a delivery id seen before gives back the first event's id.
        """
        now = time.time() if now is None else now
        delivery = event.get("delivery")
        event_id = uuid.uuid4().hex[:16]
        record = {
            "id": event_id,
            "workspace": workspace,
            "received_at": now,
            "status": "ignored" if ignored else "queued",
            "reason": ignored,
            "error": None,
            "runs": [],
            "attempts": 0,
            "event": {k: event.get(k) for k in SUMMARY},
        }
        payload = {"event": dict(event), "extra": dict(extra or {})}
        dkey = keys.delivery(str(event.get("source")), workspace, delivery or "-")
        first: str | None  # the first event's id, when the delivery was seen before
        first = self._store(
            keys=[
                dkey,
                keys.repo_event(event_id),
                keys.EVENT_LOG,
                keys.repo_events_of(workspace),
                keys.INTAKE,
                keys.EVENT_WORKSPACES,
                keys.repo_event_payload(event_id),
            ],
            args=[
                event_id,
                json.dumps(record, default=str),
                now,
                "0" if ignored else "1",
                int(self.delivery_ttl),
                "1" if delivery else "0",
                workspace,
                json.dumps(payload, default=str),
            ],
        )
        return (first, True) if first else (event_id, False)

    def load(self, event_id: str) -> dict[str, Any] | None:
        """The whole record: its state, the event and its extras."""
        raw, payload = self.redis.mget([keys.repo_event(event_id), keys.repo_event_payload(event_id)])
        if not raw:
            return None
        return {**json.loads(raw), **(json.loads(payload) if payload else {})}

    def update(self, event_id: str, **changes: Any) -> dict[str, Any] | None:
        while True:
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(keys.repo_event(event_id))  # type: ignore[no-untyped-call]  # unannotated in redis-py
                    raw = pipe.get(keys.repo_event(event_id))
                    if raw is None:
                        pipe.reset()
                        return None
                    record = {**json.loads(raw), **changes}
                    record["event"] = {k: record["event"].get(k) for k in SUMMARY}
                    pipe.multi()
                    pipe.set(keys.repo_event(event_id), json.dumps(record, default=str))
                    pipe.execute()
                    return self.load(event_id)
                except WatchError:
                    continue

    def requeue(self, event_id: str) -> None:
        """Queue the event again (e.g. a pull request that was waiting for /ok-to-test)."""
        if self.update(event_id, status="queued") is not None:
            self.redis.rpush(keys.INTAKE, event_id)

    def list(self, workspace: str | None = None, limit: int = 50, before: float | None = None) -> list[dict[str, Any]]:
        index = keys.repo_events_of(workspace) if workspace else keys.EVENT_LOG
        ids = cast(
            "list[str]",
            self.redis.zrevrangebyscore(index, f"({before}" if before else "+inf", "-inf", start=0, num=limit),
        )
        if not ids:
            return []
        return [json.loads(raw) for raw in self.redis.mget([keys.repo_event(i) for i in ids]) if raw]

    def delete_older_than(self, cutoff: float) -> int:
        """Delete every event received before `cutoff`, in batches until none is left."""
        indexes = [keys.repo_events_of(w) for w in cast("set[str]", self.redis.smembers(keys.EVENT_WORKSPACES))]
        deleted = 0
        while True:
            ids = cast("list[str]", self.redis.zrangebyscore(keys.EVENT_LOG, "-inf", cutoff, start=0, num=DELETE_BATCH))
            if not ids:
                return deleted
            with self.redis.pipeline(transaction=False) as pipe:
                for index in indexes:
                    pipe.zrem(index, *ids)
                pipe.delete(*[keys.repo_event(i) for i in ids], *[keys.repo_event_payload(i) for i in ids])
                pipe.zrem(keys.EVENT_LOG, *ids)
                pipe.execute()
            deleted += len(ids)
