"""What Strom remembers about each pull request: its latest facts, the event waiting for trust,
its summary comment and the runs it lists. One Redis hash per pull request, kept 30 days."""

from __future__ import annotations

import json
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

    def get(self, number: int, field: str) -> str | None:
        return self.redis.hget(self._key(number), field)

    def set(self, number: int, field: str, value: str) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hset(self._key(number), field, value)
            pipe.expire(self._key(number), TTL)
            pipe.execute()

    def clear(self, number: int, field: str) -> None:
        self.redis.hdel(self._key(number), field)
