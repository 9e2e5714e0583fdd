"""Finished runs' logs out of Redis: some time after a run finished (`logs.archive_after`), its log stream is
written as gzipped JSON lines to the object storage (the data directory or the bucket of `storage:`), and the
stream leaves Redis in the same transaction that records where it went. Readers do not notice: a log that is not
in Redis is read from its archive, with the same line ids (runner/store/logs.py)."""

from __future__ import annotations

import gzip
import json
import tempfile
import threading
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, cast

from . import keys
from .logs import LogLine, LogStore

if TYPE_CHECKING:
    from redis import Redis

    from .objects import ObjectStore

__all__ = ["LogArchive", "log_object"]

_CACHED = 8  # archived logs kept parsed per process: a reader pages through one log at a time
_MAX_ARCHIVE = 2 * 1024 * 1024 * 1024  # bytes of one compressed log (a run's log is bounded far below this)


def log_object(job_id: str) -> str:
    return f"logs/{uuid.uuid5(uuid.NAMESPACE_URL, f'strom-log:{job_id}').hex}.jsonl.gz"


class LogArchive:
    def __init__(self, redis: Redis, objects: ObjectStore):
        self.redis = redis
        self.objects = objects
        self._cache: OrderedDict[str, list[LogLine]] = OrderedDict()
        self._lock = threading.Lock()

    def archive(self, logs: LogStore, job_id: str) -> bool:
        """Move the run's log to the object storage; whether there was one to move."""
        key = log_object(job_id)
        with tempfile.TemporaryFile() as file:
            count, after = 0, "0-0"
            with gzip.GzipFile(fileobj=file, mode="wb") as out:
                while True:
                    page = logs.page(job_id, after=after, markers=True, from_archive=False)
                    for line in page.lines:
                        out.write(json.dumps(line.to_dict(), separators=(",", ":")).encode() + b"\n")
                    count += len(page.lines)
                    after = page.next
                    if not page.more:
                        break
            if count == 0:
                return False
            file.seek(0)
            self.objects.put_stream(key, file, _MAX_ARCHIVE)
        with self.redis.pipeline() as pipe:
            pipe.set(keys.log_archive(job_id), key)
            pipe.delete(keys.log(job_id))
            pipe.execute()
        return True

    def lines(self, job_id: str) -> list[LogLine] | None:
        """The archived log of the run, or None if it has none."""
        with self._lock:
            if job_id in self._cache:
                self._cache.move_to_end(job_id)
                return self._cache[job_id]
        key = cast("str | None", self.redis.get(keys.log_archive(job_id)))
        if key is None:
            return None
        stream, _ = self.objects.open(key)
        try:
            with gzip.GzipFile(fileobj=stream, mode="rb") as text:
                lines = [LogLine(**json.loads(raw)) for raw in text if raw.strip()]
        finally:
            stream.close()
        with self._lock:
            self._cache[job_id] = lines
            while len(self._cache) > _CACHED:
                self._cache.popitem(last=False)
        return lines

    def forget(self, job_id: str) -> None:
        """Delete the run's archived log (its run is being deleted)."""
        key = cast("str | None", self.redis.get(keys.log_archive(job_id)))
        if key is not None:
            self.objects.delete(key)
        with self._lock:
            self._cache.pop(job_id, None)
