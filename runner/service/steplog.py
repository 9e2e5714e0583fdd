"""A step's log on its way to Redis, bounded in bytes.

Lines go out as they come until the step has used its share (`logs.max_step_size`, and what is
left of `logs.max_run_size` for its run); from then on only the last `logs.tail_size` bytes are
kept. When the step ends, one line says how much was cut, and the kept end follows it, so the
log shows its beginning, a visible gap, and its end.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from ..sizes import format_size
from ..store.logs import STROM

__all__ = ["LogLimits", "StepLog", "LINE_OVERHEAD"]

LINE_OVERHEAD = 64  # what storing a line costs beyond its text


@dataclass(frozen=True)
class LogLimits:
    step: int
    run: int
    tail: int

    @classmethod
    def of(cls, config) -> "LogLimits":
        return cls(config.log_max_step, config.log_max_run, config.log_tail)


class StepLog:
    def __init__(self, outbox, job_id: str, step: str, attempt: int, limits: LogLimits, run_used: int = 0):
        self.outbox, self.job_id, self.step, self.attempt = outbox, job_id, step, attempt
        self.limit = min(limits.step, max(0, limits.run - run_used))
        self.tail_room = min(limits.tail, self.limit // 2)
        self.head_room = self.limit - self.tail_room
        self.tail: deque = deque()
        self.tail_size = 0
        self.cut_lines = self.cut_bytes = 0
        self.lock = threading.Lock()

    def line(self, stream: str, text: str) -> None:
        size = len(text.encode("utf-8", "replace")) + LINE_OVERHEAD
        at = time.time()
        with self.lock:
            if not self.tail and size <= self.head_room:
                self.head_room -= size
                self.outbox.line(self.job_id, self.step, self.attempt, stream, text, at, size)
                return
            self.tail.append((stream, text, at, size))
            self.tail_size += size
            while self.tail and self.tail_size > self.tail_room:
                *_, dropped = self.tail.popleft()
                self.tail_size -= dropped
                self.cut_lines += 1
                self.cut_bytes += dropped - LINE_OVERHEAD

    def close(self) -> None:
        """Send the notice of what was cut, then the kept end."""
        with self.lock:
            tail, self.tail, self.tail_size = list(self.tail), deque(), 0
            if self.cut_lines:
                text = (f"[strom] {self.cut_lines} line(s) ({format_size(self.cut_bytes)}) cut here: the log reached "
                        f"its limit of {format_size(self.limit)} (logs.max_step_size / logs.max_run_size); its last "
                        f"{len(tail)} line(s) follow")
                self.outbox.line(self.job_id, self.step, self.attempt, STROM, text, time.time(),
                                 len(text) + LINE_OVERHEAD)
                self.cut_lines = self.cut_bytes = 0
        for stream, text, at, size in tail:
            self.outbox.line(self.job_id, self.step, self.attempt, stream, text, at, size)
