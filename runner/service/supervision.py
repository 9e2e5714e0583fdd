"""Supervised loops: every long-running thread of a process survives errors, waits out Redis outages,
logs once per outage, and reports its state; a loop that dies anyway stops its process.

    health = Health("scheduler")
    Loop(health, "timers", one_pass, stop).start()

`one_pass()` does one unit of work and returns how long to wait before the next (None: at once).
An outage (Redis unreachable, loading or read-only after a failover) is waited out with a short
backoff, so every loop resumes within about a second of Redis coming back; any other exception is
logged (with its traceback the first time) and retried. If a loop's thread ends while its process
is not stopping, `health.fatal` is set: the process's main thread then exits non-zero, for its
supervisor (`strom up`, systemd, Kubernetes) to restart it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .. import failpoints
from ..store.connection import is_outage

__all__ = ["FATAL_EXIT", "OUTAGE_BACKOFF", "Health", "Loop", "LoopState", "WarnOnce", "is_outage"]

log = logging.getLogger("strom.health")

OUTAGE_BACKOFF = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0)  # seconds between tries while Redis is away
ERROR_BACKOFF = (0.5, 1.0, 2.0, 5.0)
FATAL_EXIT = 70  # EX_SOFTWARE: a loop died; the supervisor restarts the process
_REPEAT_LOG_EVERY = 60.0


class WarnOnce:
    """Logs a problem when it first appears, not on every pass of the loop that meets it."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self.seen: set[str] = set()

    def __call__(self, message: str, exc: BaseException | None = None) -> None:
        if message not in self.seen:
            self.seen.add(message)
            self.logger.warning("%s", message, exc_info=exc)


@dataclass
class LoopState:
    state: str = "starting"  # running | waiting-for-redis | failing | stopped | dead
    since: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict:
        return {"state": self.state, "since": round(self.since, 3), "error": self.error}


class Health:
    """The loops of one process, whether Redis is reachable from it, and whether it must exit."""

    def __init__(self, process: str):
        self.process = process
        self.part_of: Health | None = None  # the process's own, when this is one part's (a scheduler's step worker)
        self.loops: dict[str, LoopState] = {}
        self.fatal = threading.Event()
        self.fatal_reason: str | None = None
        self.started_at = time.time()
        self.reachable_since: float = self.started_at  # Redis has answered without a break since then
        self.outage_since: float | None = None
        self._lock = threading.Lock()

    def set(self, loop: str, state: str, error: str | None = None) -> None:
        with self._lock:
            current = self.loops.get(loop)
            if current is None or current.state != state or current.error != error:
                self.loops[loop] = LoopState(state, time.time(), error)

    def outage(self, loop: str, exc: BaseException) -> None:
        """`loop` cannot reach Redis; the first loop to find out logs it."""
        self.set(loop, "waiting-for-redis", str(exc)[:200])
        with self._lock:
            if self.outage_since is not None:
                return
            self.outage_since = time.time()
        log.warning(
            "%s: Redis is unreachable (%s); retrying until it is back",
            self.process,
            str(exc).strip() or type(exc).__name__,
        )

    def recovered(self, loop: str) -> None:
        """`loop` works again; when no loop waits for Redis any more, the outage is over."""
        self.set(loop, "running")
        with self._lock:
            if self.outage_since is None or any(s.state == "waiting-for-redis" for s in self.loops.values()):
                return
            away, self.outage_since = time.time() - self.outage_since, None
            self.reachable_since = time.time()
        log.warning("%s: Redis is reachable again after %.1fs", self.process, away)

    def redis_steady_for(self, now: float) -> float:
        """How long Redis has been reachable without a break (0 during an outage)."""
        with self._lock:
            return 0.0 if self.outage_since is not None else max(0.0, now - self.reachable_since)

    def die(self, loop: str, reason: str) -> None:
        self.set(loop, "dead", reason)
        if not self.fatal.is_set():
            self.fatal_reason = f"loop {loop} died: {reason}"
            log.critical(
                "%s: %s; the process exits so that its supervisor restarts it", self.process, self.fatal_reason
            )
            self.fatal.set()
        if self.part_of is not None:
            self.part_of.die(f"{self.process} {loop}", reason)

    @property
    def ok(self) -> bool:
        with self._lock:
            return not self.fatal.is_set() and all(s.state != "dead" for s in self.loops.values())

    def snapshot(self) -> dict:
        with self._lock:
            loops = {name: state.to_dict() for name, state in sorted(self.loops.items())}
            outage = self.outage_since
        return {
            "process": self.process,
            "ok": self.ok,
            "redis": "unreachable" if outage else "ok",
            "outage_since": outage,
            "loops": loops,
        }


class Loop:
    """One supervised thread running `one_pass` until `stop` is set."""

    def __init__(self, health: Health, name: str, one_pass: Callable[[], float | None], stop: threading.Event):
        self.health, self.name, self.one_pass, self.stop = health, name, one_pass, stop
        self.thread: threading.Thread | None = None
        self._failures = 0
        self._last_error: str | None = None
        self._last_logged = 0.0

    def start(self) -> threading.Thread:
        self.thread = threading.Thread(target=self._run, name=f"strom-{self.name}", daemon=True)
        self.thread.start()
        return self.thread

    def _run(self) -> None:
        self.health.set(self.name, "running")
        try:
            while not self.stop.is_set():
                failpoints.hit(f"loop:{self.name}")
                try:
                    wait = self.one_pass()
                except Exception as exc:  # noqa: BLE001 - the point of a supervised loop
                    wait = self._failed(exc)
                else:
                    self._succeeded()
                if wait:
                    self.stop.wait(wait)
        except BaseException as exc:  # noqa: BLE001 - the process goes down; this thread ends here
            self.health.die(self.name, f"{type(exc).__name__}: {exc}")
        finally:
            if self.stop.is_set():
                self.health.set(self.name, "stopped")
            else:
                self.health.die(self.name, "its thread ended")

    def _succeeded(self) -> None:
        if self._failures:
            self._failures, self._last_error = 0, None
            self.health.recovered(self.name)

    def _failed(self, exc: Exception) -> float:
        self._failures += 1
        if is_outage(exc):
            self.health.outage(self.name, exc)
            return OUTAGE_BACKOFF[min(self._failures, len(OUTAGE_BACKOFF)) - 1]
        message = f"{type(exc).__name__}: {exc}"[:500]
        now = time.monotonic()
        if message != self._last_error:
            log.error("%s: loop %s failed; retrying", self.health.process, self.name, exc_info=exc)
            self._last_logged = now
        elif now - self._last_logged > _REPEAT_LOG_EVERY:
            log.error(
                "%s: loop %s still failing (%d times): %s", self.health.process, self.name, self._failures, message
            )
            self._last_logged = now
        self._last_error = message
        self.health.set(self.name, "failing", message)
        return ERROR_BACKOFF[min(self._failures, len(ERROR_BACKOFF)) - 1]
