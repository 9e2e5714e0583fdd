"""Step logs: one Redis stream per run; each entry is one line of one step."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from . import keys

__all__ = ["LogStore", "LogLine", "LogBuffer", "MAX_LINES", "STATUS", "RUN"]

MAX_LINES = 200_000  # per run, approximately; older lines are trimmed
STATUS, RUN = "status", "run"  # streams of entries that mark a step's or the run's new status


@dataclass(frozen=True)
class LogLine:
    id: str
    step: str
    attempt: int
    stream: str
    text: str
    time: float

    @property
    def is_marker(self) -> bool:
        return self.stream in (STATUS, RUN)

    def to_dict(self) -> dict:
        return {"id": self.id, "step": self.step, "attempt": self.attempt, "stream": self.stream,
                "text": self.text, "time": self.time}


def _line(entry_id: str, fields: dict) -> LogLine:
    return LogLine(entry_id, fields.get("s", ""), int(fields.get("a", 1)), fields.get("o", "stdout"),
                   fields.get("l", ""), float(fields.get("t", 0)))


class LogStore:
    def __init__(self, redis):
        self.redis = redis

    def append(self, job_id: str, lines: list[tuple[str, int, str, str, float]], pipe=None) -> None:
        """lines: (step, attempt, stream, text, time)."""
        target = pipe or self.redis.pipeline(transaction=False)
        for step, attempt, stream, text, at in lines:
            target.xadd(keys.log(job_id), {"s": step, "a": attempt, "o": stream, "l": text, "t": f"{at:.6f}"},
                        maxlen=MAX_LINES, approximate=True)
        if pipe is None:
            target.execute()

    def stage_transitions(self, pipe, old, new, now: float) -> None:
        """Mark step and run status changes in the log stream, so followers learn of them at once."""
        before = old.steps if old is not None else {}
        for name, run in new.steps.items():
            prev = before.get(name)
            if prev is not None and prev.status is run.status and prev.attempt == run.attempt:
                continue
            if run.status.value in ("pending", "queued"):
                continue
            pipe.xadd(keys.log(new.id), {"s": name, "a": run.attempt, "o": STATUS, "l": run.status.value,
                                         "t": f"{now:.6f}"}, maxlen=MAX_LINES, approximate=True)
        if new.status.terminal and (old is None or not old.status.terminal):
            pipe.xadd(keys.log(new.id), {"s": "", "a": new.attempt, "o": RUN, "l": new.status.value,
                                         "t": f"{now:.6f}"}, maxlen=MAX_LINES, approximate=True)

    def read(self, job_id: str, after: str = "0", step: str | None = None, limit: int = 10_000,
             markers: bool = False) -> list[LogLine]:
        start = f"({after}" if after not in ("0", "0-0", "-") else "-"
        entries = self.redis.xrange(keys.log(job_id), min=start, max="+", count=limit)
        lines = [_line(i, f) for i, f in entries]
        return [ln for ln in lines if (markers or not ln.is_marker)
                and (step is None or ln.step == step or ln.step.startswith(step + "["))]

    def follow(self, job_id: str, after: str, block_ms: int) -> list[LogLine]:
        """Lines after `after`, waiting up to `block_ms` for the first one."""
        result = self.redis.xread({keys.log(job_id): after or "0-0"}, block=block_ms, count=1000)
        if not result:
            return []
        return [_line(i, f) for i, f in result[0][1]]


class LogBuffer:
    """Collects a step's lines and writes them in small batches: at most 50 ms late, 200 lines at a time."""

    def __init__(self, store: LogStore, job_id: str, step: str, attempt: int, interval: float = 0.05):
        self.store, self.job_id, self.step, self.attempt = store, job_id, step, attempt
        self.interval = interval
        self.pending: list[tuple[str, int, str, str, float]] = []
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None

    def line(self, stream: str, text: str) -> None:
        with self.lock:
            self.pending.append((self.step, self.attempt, stream, text, time.time()))
            full = len(self.pending) >= 200
            if not full and self.timer is None:
                self.timer = threading.Timer(self.interval, self.flush)
                self.timer.daemon = True
                self.timer.start()
        if full:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            batch, self.pending = self.pending, []
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
        if batch:
            self.store.append(self.job_id, batch)
