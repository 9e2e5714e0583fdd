"""What Strom remembers about each pull request: its latest facts, the event waiting for trust,
its summary comment and the runs it lists. One Redis hash per pull request, kept 30 days."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, fields, replace

from ..forges.event import PullRequest
from ..store import keys

__all__ = ["Pulls"]

TTL = 30 * 86400
_FACTS = ("title", "head_sha", "head_ref", "base_ref", "from_fork", "author", "author_association", "url", "head_repo")


class Pulls:
    def __init__(self, redis, workspace: str):
        self.redis = redis
        self.workspace = workspace

    def _key(self, number: int) -> str:
        return keys.pull_request(self.workspace, number)

    def remember(self, pr: PullRequest) -> None:
        """Keep the pull request's facts; a payload that lacks one (GitLab names the author only when
        the author acted) leaves the known value."""
        known = json.loads(self.redis.hget(self._key(pr.number), "facts") or "{}")
        facts = {**known, **{k: v for k, v in asdict(pr).items() if k in _FACTS and v not in (None, "")}}
        with self.redis.pipeline() as pipe:
            pipe.hset(self._key(pr.number), "facts", json.dumps(facts))
            pipe.expire(self._key(pr.number), TTL)
            pipe.execute()

    def complete(self, pr: PullRequest) -> PullRequest:
        """`pr` with the fields its payload lacked (a GitHub comment has no head or base) filled in."""
        raw = self.redis.hget(self._key(pr.number), "facts")
        if not raw:
            return pr
        known = json.loads(raw)
        missing = {f.name: known[f.name] for f in fields(pr) if f.name in known and getattr(pr, f.name) in (None, "")}
        if "from_fork" in known and not pr.head_sha:
            missing["from_fork"] = known["from_fork"]
        return replace(pr, **missing) if missing else pr

    def track(self, pr: PullRequest, now: float | None = None) -> bool:
        """Keep the set of open pull requests the overview shows in line with `pr`'s event; True when it closed."""
        if pr.action in ("closed", "merged"):
            self.redis.zrem(keys.open_pulls(self.workspace), pr.number)
            return True
        self.redis.zadd(keys.open_pulls(self.workspace), {str(pr.number): now if now is not None else time.time()})
        return False

    def open_numbers(self, limit: int = 50) -> list[int]:
        """The open pull requests, most recently active first; one quiet for 30 days is taken for gone."""
        key = keys.open_pulls(self.workspace)
        self.redis.zremrangebyscore(key, "-inf", time.time() - TTL)
        return [int(n) for n in self.redis.zrevrange(key, 0, limit - 1)]

    def facts_of(self, numbers: list[int]) -> dict[int, dict]:
        with self.redis.pipeline(transaction=False) as pipe:
            for number in numbers:
                pipe.hget(self._key(number), "facts")
            raws = pipe.execute()
        return {number: json.loads(raw or "{}") for number, raw in zip(numbers, raws, strict=True)}

    def get(self, number: int, field: str) -> str | None:
        return self.redis.hget(self._key(number), field)

    def set(self, number: int, field: str, value: str) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hset(self._key(number), field, value)
            pipe.expire(self._key(number), TTL)
            pipe.execute()

    def clear(self, number: int, field: str) -> None:
        self.redis.hdel(self._key(number), field)
