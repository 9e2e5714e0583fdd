"""A step's log on its way to Redis, bounded in bytes.

Lines go out as they come until the step has used its share: at most `logs.max_step_size`, taken
from its run's `logs.max_run_size` in grants of 256 KiB (so parallel steps share the
run's budget, and a run stores at most its limit; its first grant also sets its tail's room
aside, and what it does not use goes back at its end). From then on only the last
`logs.tail_size` bytes are kept. When the step ends, one line says how much was cut, and the kept end follows, so
the log shows its beginning, a visible gap, and its end. While Redis cannot be asked for a grant,
the step goes on as if it had one: its lines wait in the outbox, which is bounded itself.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..sizes import format_size
from ..store.logs import STROM

__all__ = ["GRANT", "LINE_OVERHEAD", "LogBudget", "LogLimits", "StepLog"]

LINE_OVERHEAD = 64  # what storing a line costs beyond its text
GRANT = 256 * 1024  # how much of its run's budget a step asks for at a time

# KEYS[1]: the run's granted bytes; ARGV: wanted, the run's limit. Grants what is left, up to what is wanted;
# a negative want gives bytes back.
_GRANT_SCRIPT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[1])
if wanted < 0 then
  local back = math.min(-wanted, used)
  redis.call('DECRBY', KEYS[1], back)
  return -back
end
local grant = math.min(wanted, math.max(0, tonumber(ARGV[2]) - used))
if grant > 0 then redis.call('INCRBY', KEYS[1], grant) end
return grant
"""


@dataclass(frozen=True)
class LogLimits:
    step: int
    run: int
    tail: int

    @classmethod
    def of(cls, config) -> LogLimits:
        return cls(config.log_max_step, config.log_max_run, config.log_tail)


class LogBudget:
    """Grants bytes of runs' log budgets, atomically, from Redis."""

    def __init__(self, redis, run_limit: int):
        self.script = redis.register_script(_GRANT_SCRIPT)
        self.run_limit = run_limit

    def for_run(self, counter_key: str) -> Callable[[int], int]:
        return lambda wanted: int(self.script(keys=[counter_key], args=[wanted, self.run_limit]))


class StepLog:
    def __init__(self, outbox, job_id: str, step: str, attempt: int, limits: LogLimits, budget: Callable[[int], int]):
        self.outbox, self.job_id, self.step, self.attempt = outbox, job_id, step, attempt
        self.limit = limits.step
        self.tail_room = min(limits.tail, limits.step // 2)
        self.head_room = limits.step - self.tail_room  # the most the head may hold
        self.head_used = self.granted = 0
        self.tail_reserved: int | None = None  # set aside by the first grant
        self.budget = budget
        self.tail: deque = deque()
        self.tail_size = 0
        self.cut_lines = self.cut_bytes = 0
        self.lock = threading.Lock()

    def line(self, stream: str, text: str) -> None:
        size = len(text.encode("utf-8", "replace")) + LINE_OVERHEAD
        at = time.time()
        with self.lock:
            if not self.tail and self._room_for(size):
                self.head_used += size
                self.outbox.line(self.job_id, self.step, self.attempt, stream, text, at, size)
                return
            self.tail.append((stream, text, at, size))
            self.tail_size += size
            self._trim_tail(self.tail_room)

    def _room_for(self, size: int) -> bool:
        if self.tail_reserved is None:
            got = self._grant(min(max(GRANT, size), self.head_room) + self.tail_room)
            self.tail_reserved = min(got, self.tail_room)
            self.granted = got - self.tail_reserved
        if self.head_used + size > self.head_room:
            return False
        if self.head_used + size > self.granted:
            self.granted += self._grant(min(max(GRANT, size), self.head_room - self.granted))
        return self.head_used + size <= self.granted

    def _grant(self, wanted: int) -> int:
        try:
            return self.budget(wanted)
        except Exception:  # noqa: BLE001 - Redis is away: go on, the outbox holds (a bounded amount of) lines
            return wanted

    def _trim_tail(self, room: int) -> None:
        while self.tail and self.tail_size > room:
            *_, dropped = self.tail.popleft()
            self.tail_size -= dropped
            self.cut_lines += 1
            self.cut_bytes += dropped - LINE_OVERHEAD

    def close(self) -> None:
        """Send the notice of what was cut, then the kept end; give back the budget not used."""
        with self.lock:
            self._trim_tail(self.tail_reserved or 0)
            tail, kept = list(self.tail), self.tail_size
            self.tail, self.tail_size = deque(), 0
            unused = (self.granted - self.head_used) + ((self.tail_reserved or 0) - kept)
            self.granted, self.tail_reserved = self.head_used, kept
            if self.cut_lines:
                text = (
                    f"[strom] {self.cut_lines} line(s) ({format_size(self.cut_bytes)}) cut here: the log reached "
                    f"its limit (logs.max_step_size is {format_size(self.limit)} a step, logs.max_run_size "
                    f"bounds the run); its last {len(tail)} line(s) follow"
                )
                self.outbox.line(
                    self.job_id, self.step, self.attempt, STROM, text, time.time(), len(text) + LINE_OVERHEAD
                )
                self.cut_lines = self.cut_bytes = 0
        for stream, text, at, size in tail:
            self.outbox.line(self.job_id, self.step, self.attempt, stream, text, at, size)
        if unused > 0:
            self._grant(-unused)
