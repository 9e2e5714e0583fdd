"""Memory of `strom up` after one run: every process it starts, the supervisor included.

    python3 bench/memory.py

Starts `strom up --run example` in a copy of this repository's `.strom/` (its embedded Redis, the web
server, the scheduler and a worker), waits for the example run to end, lets the processes settle and
prints each one's RSS and PSS (shared pages counted once) with the totals. Goal: <= 110 MiB RSS.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from service_stack import free_port

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="strom-bench-memory-"))
    shutil.copytree(ROOT / ".strom", folder / ".strom")
    port = free_port()
    up = subprocess.Popen(
        [sys.executable, "-m", "runner.cli", "up", "--port", str(port), "--run", "example"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert up.stdout is not None
        deadline = time.monotonic() + 120
        for line in up.stdout:
            if "Press Ctrl-C" in line or time.monotonic() > deadline:
                break
        time.sleep(3)  # let every process settle after the run
        rows = []
        main_process = psutil.Process(up.pid)
        for proc in [main_process, *main_process.children(recursive=True)]:
            try:
                info = proc.memory_full_info()
                rows.append((_role(proc), info.rss / MIB, info.pss / MIB))
            except psutil.Error:
                continue
        print("strom up after one run of the example pipeline (MiB):")
        for role, rss, pss in sorted(rows, key=lambda r: -r[1]):
            if rss >= 1:
                print(f"  {role:<34} RSS {rss:6.1f}   PSS {pss:6.1f}")
        rss, pss = sum(r[1] for r in rows), sum(r[2] for r in rows)
        print(f"  {'total':<34} RSS {rss:6.1f}   PSS {pss:6.1f}   (goal: RSS <= 110)")
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        up.wait(30)
        shutil.rmtree(folder, ignore_errors=True)


def _role(proc: psutil.Process) -> str:
    text = " ".join(proc.cmdline())
    if "gunicorn" in text:
        parent = proc.parent()
        return (
            "web worker (gunicorn)" if parent and "gunicorn" in " ".join(parent.cmdline()) else "web (gunicorn master)"
        )
    for needle, role in (
        ("kill -KILL", "step watchdog (sh)"),
        ("runner.cli up", "supervisor (strom up)"),
        ("redis-server", "redis-server"),
        ("runner.cli scheduler", "scheduler"),
        ("runner.cli worker", "worker"),
        ("webhooks.serve", "server (web, scheduler, steps)"),
    ):
        if needle in text:
            return role
    return "step watchdog (cat)" if text == "cat" else text[:34]


if __name__ == "__main__":
    main()
