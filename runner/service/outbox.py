"""What a worker owes Redis, in order: its steps' log lines and their start and end reports.

Nothing is dropped because Redis is away. Lines and reports wait here, in the order they were
made, until one transaction has stored them; a step's lines therefore always precede its end.
At most `max_pending` bytes of lines wait: beyond that, a step writing faster than Redis takes its
lines is held back (its process blocks on its output), and while Redis is unreachable the lines
beyond are counted instead, and one line in the log says how many could not be kept. A final
report is never dropped: if it waits longer than `spool_after` it is also written to the spool
directory, so that a worker started again on this machine delivers it. Delivering a report twice is harmless: the engine
takes each attempt's report once and ignores a superseded attempt's.

Each final report is stored with its attempt's result key, which tells the scheduler that the
attempt is not lost even when the scheduler has not read the report yet.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.events import StepAbandoned, StepAsked, StepFinished, StepStarted
from ..runs import messages
from ..sizes import format_size
from ..store import keys
from ..store.logs import STROM, LogStore

__all__ = ["RESULT_TTL", "Outbox"]

log = logging.getLogger("strom.worker")

RESULT_TTL = 86400
IDLE_WAIT = 0.05  # lines reach Redis at most this late
_ITEM_LINES, _ITEM_BYTES = 1000, 1024 * 1024  # one item of lines grows up to this
_BATCH_BYTES = 2 * 1024 * 1024  # one transaction carries about this much


@dataclass
class _Lines:
    job_id: str
    entries: list = field(default_factory=list)  # (step, attempt, stream, text, time)
    size: int = 0
    sealed: bool = False  # on its way to Redis: later lines go into a new item

    def stage(self, pipe, logs: LogStore) -> None:
        logs.append(self.job_id, self.entries, pipe)


@dataclass
class _Report:
    job_id: str
    step: str
    attempt: int
    raw: str  # the encoded events-list message
    final: bool
    made_at: float
    spooled: Path | None = None
    size: int = 0
    also: Callable[[Any], None] | None = None  # more to write in the same transaction (never spooled)

    def stage(self, pipe, logs: LogStore) -> None:
        if self.also is not None:
            self.also(pipe)
        if self.final:
            pipe.set(keys.result(self.job_id, self.step, self.attempt), self.raw, ex=RESULT_TTL)
            pipe.delete(keys.owed(self.job_id, self.step, self.attempt))
        pipe.rpush(keys.EVENTS, self.raw)


class Outbox:
    def __init__(
        self,
        redis,
        logs: LogStore,
        spool: Path | None = None,
        max_pending: int = 32 * 1024 * 1024,
        spool_after: float = 10.0,
    ):
        self.redis, self.logs, self.spool = redis, logs, spool
        self.max_pending, self.spool_after = max_pending, spool_after
        self.items: deque[_Lines | _Report] = deque()
        self.pending_bytes = 0
        self.dropped: dict[tuple[str, str, int], list[int]] = {}  # (job, step, attempt) -> [lines, bytes]
        self.unreported: dict[tuple[str, str, int], float] = {}  # attempts whose final report is not stored yet
        self.lock = threading.Lock()
        self.room = threading.Condition(self.lock)  # notified when delivered lines make room
        self.wake = threading.Event()  # set by a report (they go out at once) or a full item of lines
        self.sending = threading.Lock()  # one delivery at a time, in order
        self.reachable = True  # whether the last delivery reached Redis

    # ----------------------------------------------------------------- from step threads
    def line(self, job_id: str, step: str, attempt: int, stream: str, text: str, at: float, size: int) -> None:
        key = (job_id, step, attempt)
        with self.lock:
            while self.pending_bytes + size > self.max_pending and self.reachable and self.pending_bytes:
                self.room.wait(1.0)
            if self.pending_bytes + size > self.max_pending:
                count = self.dropped.setdefault(key, [0, 0])
                count[0] += 1
                count[1] += size
                return
            self._gap_notice(key)
            self._add_line(job_id, (step, attempt, stream, text, at), size)

    def report(
        self,
        job_id: str,
        event: StepStarted | StepFinished | StepAbandoned | StepAsked,
        also: Callable[[Any], None] | None = None,
    ) -> None:
        """Queue an engine event about an attempt (its start, or its end: StepFinished, StepAsked); `also` stages
        more writes into the transaction that stores it."""
        step, attempt = event.step, event.attempt
        final = isinstance(event, (StepFinished, StepAbandoned, StepAsked))
        raw = messages.encode(messages.event_message(job_id, event))
        with self.lock:
            self._gap_notice((job_id, step, attempt))
            self.items.append(_Report(job_id, step, attempt, raw, final, time.monotonic(), also=also))
            if final:
                self.unreported[(job_id, step, attempt)] = time.time()
        self.wake.set()
        if self.reachable and self.sending.acquire(blocking=False):  # on the step's path: no thread hop
            try:
                self._send()  # what comes after this report is left to the delivering loop
            except Exception:  # noqa: BLE001 - the delivering loop tries again, and reports the outage
                pass
            finally:
                self.sending.release()

    def _add_line(self, job_id: str, entry: tuple, size: int) -> None:
        last = self.items[-1] if self.items else None
        if not (
            isinstance(last, _Lines)
            and last.job_id == job_id
            and not last.sealed
            and len(last.entries) < _ITEM_LINES
            and last.size < _ITEM_BYTES
        ):
            if isinstance(last, _Lines):
                self.wake.set()  # a full item: no need to wait for more
            last = _Lines(job_id)
            self.items.append(last)
        last.entries.append(entry)
        last.size += size
        self.pending_bytes += size

    def _gap_notice(self, key: tuple[str, str, int]) -> None:
        count = self.dropped.pop(key, None)
        if count:
            text = (
                f"[strom] {count[0]} line(s) ({format_size(count[1])}) of this step could not be kept while "
                f"Redis was unreachable"
            )
            self._add_line(key[0], (key[1], key[2], STROM, text, time.time()), len(text) + 64)

    # ----------------------------------------------------------------- the delivering loop
    def pending_attempts(self) -> list[tuple[str, str, int]]:
        with self.lock:
            return list(self.unreported)

    def wait_reported(self, attempt: tuple[str, str, int], give_up: threading.Event) -> bool:
        """Wait until Redis has the final report of `attempt` (job, step, attempt), or `give_up` is set."""
        with self.lock:
            while attempt in self.unreported:
                if give_up.is_set():
                    return False
                self.room.wait(0.2)
        return True

    def one_pass(self) -> float | None:
        """Store what is pending, oldest first; raises while Redis is away."""
        self.wake.wait(IDLE_WAIT)  # lines wait a little to go out together; reports do not wait
        self.wake.clear()
        with self.sending:
            while self._send():
                pass
        return None

    def _send(self) -> bool:
        """Store the oldest pending items in one transaction; whether more are pending."""
        with self.lock:
            if not self.items:
                return False
            batch: list[_Lines | _Report] = []
            size = 0
            for item in self.items:
                if batch and size >= _BATCH_BYTES:
                    break
                if isinstance(item, _Lines):
                    item.sealed = True
                batch.append(item)
                size += item.size
        try:
            with self.redis.pipeline(transaction=True) as pipe:
                for item in batch:
                    item.stage(pipe, self.logs)
                pipe.execute()
        except Exception:
            with self.lock:
                self.reachable = False
                self.room.notify_all()
            self._spool_overdue()
            raise
        self._delivered(batch)
        return bool(self.items)

    def _delivered(self, batch: list) -> None:
        with self.lock:
            self.reachable = True
            self.room.notify_all()
            for item in batch:
                self.items.popleft()
                if isinstance(item, _Lines):
                    self.pending_bytes -= item.size
                elif item.final:
                    self.unreported.pop((item.job_id, item.step, item.attempt), None)
        for item in batch:
            if isinstance(item, _Report) and item.spooled is not None:
                item.spooled.unlink(missing_ok=True)

    def drain(self, timeout: float) -> bool:
        """Deliver everything now (when stopping); False, with reports spooled, if Redis stays away."""
        end = time.monotonic() + timeout
        while True:
            with self.lock:
                if not self.items:
                    return True
            try:
                with self.sending:
                    self._send()
            except Exception as exc:  # noqa: BLE001 - whatever it is, the reports are spooled
                if time.monotonic() > end:
                    self._spool_overdue(force=True)
                    self._give_back_taken()
                    log.warning(
                        "stopping with %d undelivered item(s) (%s); final reports are spooled in %s",
                        len(self.items),
                        exc,
                        self.spool,
                    )
                    return False
                time.sleep(0.2)

    # ----------------------------------------------------------------- the spool
    def _spool_overdue(self, force: bool = False) -> None:
        if self.spool is None:
            return
        now = time.monotonic()
        with self.lock:
            overdue = [
                i
                for i in self.items
                if isinstance(i, _Report)
                and i.final
                and i.spooled is None
                and (force or now - i.made_at > self.spool_after)
            ]
        for report in overdue:
            name = hashlib.sha1(keys.step_key(report.job_id, report.step, report.attempt).encode()).hexdigest()
            path = self.spool / f"{name}.json"
            try:
                self.spool.mkdir(parents=True, exist_ok=True)
                temp = path.with_suffix(".tmp")
                temp.write_text(
                    json.dumps(
                        {"job": report.job_id, "step": report.step, "attempt": report.attempt, "raw": report.raw}
                    )
                )
                os.replace(temp, path)
                report.spooled = path
            except OSError as exc:
                log.warning("could not spool the report of %s/%s: %s", report.job_id, report.step, exc)

    def _give_back_taken(self) -> None:
        """Reports this worker took from the spool and could not deliver go back to it, for the next worker."""
        with self.lock:
            taken = [
                i.spooled for i in self.items if isinstance(i, _Report) and i.spooled and i.spooled.suffix == ".taken"
            ]
        for spooled in taken:
            try:
                os.replace(spooled, spooled.with_name(spooled.name.split(".")[0] + ".json"))
            except OSError as exc:
                log.warning("could not return %s to the spool: %s", spooled, exc)

    def load_spool(self, owner: str) -> int:
        """Queue the final reports a stopped worker on this machine left in the spool (also those another
        worker took and died holding: delivering a report twice is harmless)."""
        if self.spool is None or not self.spool.is_dir():
            return 0
        loaded = 0
        for path in sorted([*self.spool.glob("*.json"), *self.spool.glob("*.taken")]):
            if path.name.endswith(f".{owner}.taken"):
                continue
            taken = path.with_name(f"{path.name.split('.')[0]}.{owner}.taken")
            try:
                os.rename(path, taken)  # one worker takes each file
                data = json.loads(taken.read_text())
            except (OSError, ValueError):
                continue
            with self.lock:
                self.items.append(
                    _Report(
                        data["job"],
                        data["step"],
                        int(data["attempt"]),
                        data["raw"],
                        True,
                        time.monotonic(),
                        spooled=taken,
                    )
                )
                self.unreported[(data["job"], data["step"], int(data["attempt"]))] = time.time()
            loaded += 1
        if loaded:
            log.warning("delivering %d step report(s) left in %s by a stopped worker", loaded, self.spool)
        return loaded
