"""Named points where a test makes a process fail on purpose, to prove that nothing is lost when
a real one fails there: `STROM_FAILPOINTS="worker-after-claim=exit,loop:timers=raise"`.

Actions: `exit` ends the process at once, as SIGKILL would; `raise` raises SystemExit in the
thread (a loop dying of something no handler expects); `sleep:SECONDS` stalls it. Nothing happens
unless the environment names the point, and production never sets it.
"""

from __future__ import annotations

import os
import time

__all__ = ["ACTIVE", "hit"]


def _parse(text: str) -> dict[str, str]:
    points = {}
    for item in text.split(","):
        name, _, action = item.strip().partition("=")
        if name:
            points[name] = action or "exit"
    return points


ACTIVE = _parse(os.environ.get("STROM_FAILPOINTS", ""))


def hit(name: str) -> None:
    action = ACTIVE.get(name) if ACTIVE else None
    if action is None:
        return
    if action == "exit":
        os._exit(137)
    if action == "raise":
        raise SystemExit(f"failpoint {name}")
    if action.startswith("sleep:"):
        time.sleep(float(action.split(":", 1)[1]))
