"""Step logs: one Redis stream per run; each entry is one line of one step.

A run's log is bounded in bytes by its writers (see runner/service/steplog.py), never trimmed
from the front: what was cut is replaced by one visible line saying how much.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..engine.state import changed_steps
from ..engine.status import StepStatus
from . import keys

if TYPE_CHECKING:
    from redis import Redis
    from redis.client import Pipeline

    from ..engine.state import RunState

__all__ = ["READ_BYTES", "RUN", "STATUS", "STROM", "LogLine", "LogPage", "LogStore"]

STATUS, RUN = "status", "run"  # streams of entries that mark a step's or the run's new status
STROM = "strom"  # lines from Strom itself (notices, setup errors)
READ_BYTES = 4 * 1024 * 1024  # a read answers at most about this much text; the caller pages on
_PAGE = 500
_Entry = tuple[str, dict[str, str]]  # a stream entry (id, fields) as a client that decodes responses reads it


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

    def to_dict(self) -> dict[str, str | int | float]:
        return {
            "id": self.id,
            "step": self.step,
            "attempt": self.attempt,
            "stream": self.stream,
            "text": self.text,
            "time": self.time,
        }


@dataclass(frozen=True)
class LogPage:
    lines: list[LogLine]
    next: str  # the id to read after for the next page
    more: bool  # stopped at a bound: there may be more lines


def _line(entry_id: str, fields: dict[str, str]) -> LogLine:
    return LogLine(
        entry_id,
        fields.get("s", ""),
        int(fields.get("a", 1)),
        fields.get("o", "stdout"),
        fields.get("l", ""),
        float(fields.get("t", 0)),
    )


def _of_step(line: LogLine, step: str | None) -> bool:
    return step is None or line.step == step or line.step.startswith(step + "[")


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms or 0), int(seq or 0)


def _page_of(
    archived: list[LogLine], after: str, step: str | None, limit: int, markers: bool, max_bytes: int
) -> LogPage:
    """A page of an archived log, as `LogStore.page` gives one of a stream."""
    lines: list[LogLine] = []
    cursor, size, start = after, 0, _id(after if after not in ("-", "") else "0-0")
    for line in archived:
        if _id(line.id) <= start:
            continue
        cursor = line.id
        if (markers or not line.is_marker) and _of_step(line, step):
            lines.append(line)
            size += len(line.text) + 64
            if size >= max_bytes or len(lines) >= limit:
                return LogPage(lines, cursor, True)
    return LogPage(lines, cursor, False)


class LogStore:
    def __init__(
        self,
        redis: Redis,
        following: Callable[[], Redis] | None = None,
        archived: Callable[[str], list[LogLine] | None] | None = None,
    ):
        """`following` makes the client that log streams block on (with a longer read timeout); `archived` reads
        the log of a finished run that left Redis (runner/store/log_archive.py). Both clients decode responses
        (`connect`): stream ids and fields are str, as the casts below say."""
        self.redis = redis
        self._following = following
        self._follower: Redis | None = None
        self._archived = archived

    def append(self, job_id: str, lines: list[tuple[str, int, str, str, float]], pipe: Pipeline | None = None) -> None:
        """lines: (step, attempt, stream, text, time)."""
        target = pipe or self.redis.pipeline(transaction=False)
        for step, attempt, stream, text, at in lines:
            target.xadd(keys.log(job_id), {"s": step, "a": attempt, "o": stream, "l": text, "t": f"{at:.6f}"})
        if pipe is None:
            target.execute()

    def stage_transitions(self, pipe: Pipeline, old: RunState | None, new: RunState, now: float) -> None:
        """Mark step and run status changes in the log stream, so followers learn of them at once."""
        for name, _, run in changed_steps(old, new):
            if run.status in (StepStatus.PENDING, StepStatus.QUEUED):
                continue
            pipe.xadd(
                keys.log(new.id), {"s": name, "a": run.attempt, "o": STATUS, "l": run.status.value, "t": f"{now:.6f}"}
            )
        if new.status.terminal and (old is None or not old.status.terminal):
            pipe.xadd(keys.log(new.id), {"s": "", "a": new.attempt, "o": RUN, "l": new.status.value, "t": f"{now:.6f}"})

    def read(
        self,
        job_id: str,
        after: str = "0",
        step: str | None = None,
        limit: int = 10_000,
        markers: bool = False,
        max_bytes: int = READ_BYTES,
    ) -> list[LogLine]:
        """Up to `limit` lines after `after`, stopping once about `max_bytes` of text are read."""
        return self.page(job_id, after, step, limit, markers, max_bytes).lines

    def page(
        self,
        job_id: str,
        after: str = "0",
        step: str | None = None,
        limit: int = 10_000,
        markers: bool = False,
        max_bytes: int = READ_BYTES,
        from_archive: bool = True,
    ) -> LogPage:
        """Lines after `after`, bounded by `limit` and about `max_bytes`; `next` is where the next page starts."""
        lines: list[LogLine] = []
        cursor, size = after, 0
        first = True
        while True:
            start = f"({cursor}" if cursor not in ("0", "0-0", "-") else "-"
            entries = cast("list[_Entry]", self.redis.xrange(keys.log(job_id), min=start, max="+", count=_PAGE))
            if first and not entries and from_archive and self._archived is not None:
                archived = self._archived(job_id)
                if archived is not None:
                    return _page_of(archived, after, step, limit, markers, max_bytes)
            first = False
            for entry_id, fields in entries:
                line = _line(entry_id, fields)
                cursor = entry_id
                if (markers or not line.is_marker) and _of_step(line, step):
                    lines.append(line)
                    size += len(line.text) + 64
                    if size >= max_bytes or len(lines) >= limit:
                        return LogPage(lines, cursor, True)
            if len(entries) < _PAGE:
                return LogPage(lines, cursor, False)

    def follow(self, job_id: str, after: str, block_ms: int) -> list[LogLine]:
        """Lines after `after`, waiting up to `block_ms` for the first one."""
        if self._follower is None:
            self._follower = self._following() if self._following else self.redis
        result = cast(
            "list[list[Any]]",  # [[stream, entries]]
            self._follower.xread({keys.log(job_id): after or "0-0"}, block=block_ms, count=_PAGE),
        )
        if not result:
            return []
        entries: list[_Entry] = result[0][1]
        return [_line(i, f) for i, f in entries]
