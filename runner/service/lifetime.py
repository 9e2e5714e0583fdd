"""How a service process lives: its parts run until SIGINT or SIGTERM, or until one of their loops dies; then
they stop, and a loop that died makes the exit status FATAL_EXIT, for the supervisor (`strom up`, systemd,
Kubernetes) to start the process again.

    scheduler.start()
    serve_until_stopped(scheduler, scheduler.health, health_port)
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Protocol

from .supervision import FATAL_EXIT, Health

__all__ = ["Parts", "Stoppable", "serve_until_stopped"]


class Stoppable(Protocol):
    def stop(self) -> None: ...


class Parts:
    """Several parts of one process, stopped in the order given."""

    def __init__(self, *parts: Stoppable):
        self.parts = parts

    def stop(self) -> None:
        for part in self.parts:
            part.stop()


def serve_until_stopped(part: Stoppable, health: Health, health_port: int | None = None) -> None:
    """Wait for SIGINT/SIGTERM or a dead loop, then stop `part` (with the probes on `health_port`, if any);
    exit FATAL_EXIT after a dead loop."""
    from .probes import ProbeServer

    probes = ProbeServer(health, health_port).start() if health_port else None
    event = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: event.set())
    while not event.wait(0.5) and not health.fatal.is_set():
        pass
    if health.fatal.is_set():
        print(f"{health.process}: {health.fatal_reason}; exiting with status {FATAL_EXIT}", file=sys.stderr)
        deadline = threading.Timer(30, os._exit, args=(FATAL_EXIT,))  # a stop that hangs must not keep it up
        deadline.daemon = True
        deadline.start()
    part.stop()
    if probes is not None:
        probes.stop()
    if health.fatal.is_set():
        sys.exit(FATAL_EXIT)
