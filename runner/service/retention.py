"""Retention: repository events, finished runs with their logs and artifacts, and unused snapshots are deleted when
old; the files of task state snapshots past `state.max_snapshots` too."""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, cast

from ..errors import StromError
from ..git.mirrors import GitError
from ..store import keys

if TYPE_CHECKING:
    from ..runs.service import Service

__all__ = ["BATCH", "EVERY", "Retention"]

EVERY = 60.0  # seconds between passes
BATCH = 500  # runs loaded and deleted at a time
ABANDONED_PUSH_RECORD = 86400.0  # seconds after which a push record a dead web process left is removed

log = logging.getLogger("strom.retention")


class Retention:
    def __init__(self, service: Service):
        self.service = service
        self.config = service.config
        self.redis = service.redis

    def one_pass(self) -> float:
        self.service.runs.index_filters()  # runs stored by an earlier version join the indexes they predate, once
        self.enforce(time.time())
        self.archive_logs(time.time())
        self.maintain_repositories()
        return EVERY

    def archive_logs(self, now: float) -> int:
        """Move the logs of runs finished `logs.archive_after` ago to the object storage; how many moved."""
        after = self.config.log_archive_after
        if after is None:
            return 0
        moved = 0
        while True:
            due = cast("list[str]", self.redis.zrangebyscore(keys.LOGS_TO_ARCHIVE, "-inf", now - after, 0, BATCH))
            if not due:
                return moved
            for job_id in due:
                try:
                    moved += self.service.log_archive.archive(self.service.logs, job_id)
                except StromError as exc:  # the storage is away: the log stays in Redis, tried again next pass
                    log.warning("the log of run %s was not archived: %s", job_id, exc)
                    return moved
                self.redis.zrem(keys.LOGS_TO_ARCHIVE, job_id)

    def maintain_repositories(self) -> None:
        """Git's housekeeping for mirrors and hosted repositories, which fetches and pushes leave to this pass."""
        for ws in self.config.workspaces.values():
            if ws.is_git:
                try:
                    self.service.repos.mirror(ws).maintain()
                except GitError as exc:
                    log.warning("housekeeping of workspace %s's repository failed: %s", ws.name, exc)

    def enforce(self, now: float) -> int:
        """Delete what is past `retention`: repository events, runs with their logs, unused snapshots.
        Each kind is deleted in batches until none is left, however much arrived since the last pass."""
        self.service.repo_events.delete_older_than(now - self.config.retention_max_age)
        self.collect_snapshots()
        while self.service.task_states.delete_doomed(self.service.objects):
            pass
        removed = 0
        for workspace in sorted(set(self.config.workspaces) | set(self.service.runs.workspaces())):
            index = keys.runs_by("workspace", workspace)
            old_ids = cast(
                "list[str]",  # the client decodes responses (`connect`)
                self.redis.zrangebyscore(index, "-inf", now - self.config.retention_max_age),
            )
            excess = self.redis.zcard(index) - self.config.retention_max_runs
            if excess > 0:
                old_ids = list(dict.fromkeys(old_ids + cast("list[str]", self.redis.zrange(index, 0, excess - 1))))
            for start in range(0, len(old_ids), BATCH):
                states = [s for s in self.service.runs.load_many(old_ids[start : start + BATCH]) if s.status.terminal]
                self.delete_files(states)
                removed += self.service.runs.delete(states)
        return removed

    def delete_files(self, states) -> None:
        """The artifacts and archived logs of runs about to be deleted (an object that cannot be deleted now is
        left, logged)."""
        for state in states:
            try:
                self.service.log_archive.forget(state.id)
            except StromError as exc:
                log.warning("the archived log of run %s was not deleted: %s", state.id, exc)
            for run in state.steps.values():
                for artifact in run.artifacts or ():
                    try:
                        self.service.objects.delete(str(artifact.get("key")))
                    except StromError as exc:
                        log.warning("artifact %s of run %s was not deleted: %s", artifact.get("name"), state.id, exc)

    def collect_snapshots(self) -> list[str]:
        """Remove commit snapshots (and their archives) that no unfinished run uses and nothing used lately."""
        repos = self.service.repos
        if not (repos.root / "snapshots").is_dir():
            return []
        active = self.service.runs.load_many(self.service.runs.active_ids())
        keep = {os.path.basename(s.snapshot) for s in active if s.snapshot}
        removed = repos.snapshots.collect(keep, self.config.retention_snapshots)
        for sha in removed:
            (repos.archives / f"{sha}.tar.gz").unlink(missing_ok=True)
        cutoff = time.time() - ABANDONED_PUSH_RECORD
        for record in repos.root.glob("push-*.txt"):  # left by a web process that died mid-push
            if record.stat().st_mtime < cutoff:
                record.unlink(missing_ok=True)
        return removed
