"""Per-step overhead of `strom run`: a 20-step chain and a 100-step fan-out of `true` steps.

Prints, for each shape, the median time from the end of one step to the start of the next
(the engine deciding, rendering and dispatching), and the wall time including the sandboxed
process start. Target: below 15 ms per step on a 2-core machine.

    python3 bench/local_overhead.py [--runs 5] [--jobs 4] [--sandbox auto|bwrap|copy]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from rich.console import Console

from runner.executors import LocalExecutor, LocalSettings
from runner.localrun import Approvals, Display, LocalRunner
from runner.spec import load_workspace


def workspace(root: Path) -> Path:
    chain = ["tasks:", "  chain:", "    flow:"]
    for i in range(20):
        chain.append(f"      s{i}: {{ type: script, script: 'true'" + (f", depends_on: [s{i - 1}]" if i else "") + " }")
    chain += ["  fanout:", "    flow:"]
    chain += [f"      s{i}: {{ type: script, script: 'true' }}" for i in range(100)]
    (root / ".strom").mkdir(parents=True)
    (root / ".strom" / "bench.yaml").write_text("\n".join(chain) + "\n")
    return root


def run_once(root: Path, task: str, jobs: int, sandbox: str):
    ws = load_workspace(root).raise_for_errors()
    display = Display(Console(file=open("/dev/null", "w")), quiet=True, progress=False)
    runner = LocalRunner(
        ws,
        root,
        display=display,
        approvals=Approvals(),
        jobs=jobs,
        local_executor=LocalExecutor(LocalSettings(sandbox=sandbox)),
    )
    started = time.perf_counter()
    outcome = runner.run(task, {})
    wall = time.perf_counter() - started
    assert outcome.state.status.value == "succeeded", outcome.state.error
    return outcome.state, wall


def chain_gaps(state) -> list[float]:
    runs = [state.steps[f"s{i}"] for i in range(20)]
    return [(b.started_at - a.finished_at) * 1000 for a, b in itertools.pairwise(runs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--sandbox", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = workspace(Path(tmp))
        run_once(root, "chain", args.jobs, args.sandbox)  # warm caches
        gaps, chain_walls, step_times = [], [], []
        for _ in range(args.runs):
            state, wall = run_once(root, "chain", args.jobs, args.sandbox)
            gaps += chain_gaps(state)
            chain_walls.append(wall)
            step_times += [(r.finished_at - r.started_at) * 1000 for r in state.steps.values()]
        print(f"20-step chain ({args.runs} runs, sandbox={args.sandbox})")
        print(
            f"  median overhead, end of one step to start of the next: {statistics.median(gaps):.2f} ms "
            f"(p95 {sorted(gaps)[int(len(gaps) * 0.95)]:.2f} ms)"
        )
        print(f"  median step time (process start to exit, sandboxed `true`): {statistics.median(step_times):.2f} ms")
        print(f"  median wall time per step: {statistics.median(chain_walls) / 20 * 1000:.2f} ms")
        fan_walls, overheads = [], []
        for _ in range(args.runs):
            state, wall = run_once(root, "fanout", args.jobs, args.sandbox)
            fan_walls.append(wall)
            busy = sum((r.finished_at - r.started_at) for r in state.steps.values())
            overheads.append((wall * args.jobs - busy) / 100 * 1000)
        print(f"100-step fan-out ({args.runs} runs, --jobs {args.jobs})")
        print(
            f"  median wall time: {statistics.median(fan_walls) * 1000:.0f} ms "
            f"({100 / statistics.median(fan_walls):.0f} steps/s)"
        )
        print(f"  median per-step overhead (slot time not spent in a step): {statistics.median(overheads):.2f} ms")


if __name__ == "__main__":
    main()
