"""A new user's first green run: `strom up --run example --exit` from nothing, timed.

    python3 bench/first_run.py [--repeat 5]

Each time in a fresh copy of this repository's `.strom/` with no data directory (a first start: Redis made,
its password and the admin token written): when Strom says it is up, when the example run has succeeded, and
when everything has stopped. Goal: green within 3 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from service_stack import free_port

ROOT = Path(__file__).resolve().parent.parent


def one_start() -> tuple[float, float, float]:
    folder = Path(tempfile.mkdtemp(prefix="strom-bench-first-"))
    try:
        shutil.copytree(ROOT / ".strom", folder / ".strom")
        started = time.monotonic()
        up = subprocess.Popen(
            [sys.executable, "-m", "runner.cli", "up", "--port", str(free_port()), "--run", "example", "--exit"],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert up.stdout is not None
        ready = green = None
        for line in up.stdout:
            if line.startswith("Strom is up"):
                ready = time.monotonic() - started
            elif line.startswith("Run ") and "succeeded" in line:
                green = time.monotonic() - started
        if up.wait(60) != 0 or ready is None or green is None:
            raise SystemExit(f"strom up --run example did not succeed (exit {up.returncode})")
        return ready, green, time.monotonic() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    times = [one_start() for _ in range(parser.parse_args().repeat)]
    print(f"strom up --run example --exit, {len(times)} first starts (median, max):")
    for label, column in (("up (URL printed)", 0), ("run green", 1), ("all stopped", 2)):
        values = [t[column] for t in times]
        print(f"  {label:<18} {statistics.median(values):5.2f} s   {max(values):5.2f} s")
    print("  (goal: green within 3 s)")


if __name__ == "__main__":
    main()
