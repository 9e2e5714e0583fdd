"""Service benchmarks: API execute to first step started, drain rate, per-step overhead, idle memory.

    python3 bench/service.py [--runs 30] [--drain 200]

Targets on an idle 2-core machine: execute -> first step started <= 50 ms (median and p95);
200 queued one-step runs drained by 2 workers at >= 20 runs/s; per-step overhead of a 20-step
chain <= 30 ms, and no more per step in 100- and 200-step chains; idle RSS of web, worker and
scheduler <= 150 MB together.
"""

from __future__ import annotations

import argparse
import statistics
import time

from service_stack import Stack, wait

CHAINS = (20, 100, 200)


def _chain(length: int) -> str:
    steps = (
        f"      s{i}: {{ type: script, script: 'true'" + (f", depends_on: [s{i - 1}]" if i else "") + " }"
        for i in range(length)
    )
    return f"  chain{length}:\n    flow:\n" + "\n".join(steps) + "\n"


WORKSPACE = """
tasks:
  one:
    flow:
      s: { type: script, script: "true" }
""" + "".join(_chain(n) for n in CHAINS)


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def first_step_latency(stack: Stack, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.time()
        run = stack.execute("one")
        state = wait(lambda: (s := stack.run(run["id"]))["steps"][0]["started_at"] and s, 30, "the first step")
        out.append((state["steps"][0]["started_at"] - started) * 1000)
        wait(lambda: stack.run(run["id"])["status"] == "succeeded", 30, "the run")
    return out


def chain_overhead(stack: Stack, runs: int, length: int = 20) -> list[float]:
    """Gaps between one step's end and the next one's start in `length`-step chains. The run is
    watched through the set of unfinished runs, not by reading its (large) document over and over."""
    gaps = []
    for _ in range(runs):
        run = stack.execute(f"chain{length}")
        wait(lambda: not stack.redis.sismember("strom:runs:active", run["id"]), 300, "the chain")
        state = stack.run(run["id"])
        if state["status"] != "succeeded":
            raise RuntimeError(f"the chain ended {state['status']}: {state['error']}")
        steps = {s["name"]: s for s in state["steps"]}
        gaps += [(steps[f"s{i + 1}"]["started_at"] - steps[f"s{i}"]["finished_at"]) * 1000 for i in range(length - 1)]
        STEP_TIMES.extend((s["finished_at"] - s["started_at"]) * 1000 for s in steps.values())
    return gaps


STEP_TIMES: list[float] = []  # each step's own time, start to end on its worker: the floor


def drain(stack: Stack, count: int) -> float:
    ids = [stack.execute("one")["id"] for _ in range(count)]
    stack.start_workers()
    started = time.monotonic()
    wait(lambda: all(stack.run(i)["status"] == "succeeded" for i in ids), 600, "the queue to drain")
    return count / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--drain", type=int, default=200)
    args = parser.parse_args()

    stack = Stack(WORKSPACE, workers=2, concurrency=1)
    try:
        rate = drain(stack, args.drain)
        print(f"drain: {args.drain} queued one-step runs, 2 workers: {rate:.1f} runs/s")
    finally:
        stack.close()

    stack = Stack(WORKSPACE, workers=1, concurrency=4)
    try:
        stack.start_workers()
        time.sleep(2)  # let every process settle before reading idle memory
        rss = stack.rss_mb()
        print(
            "idle RSS: "
            + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items())
            + f" - together {sum(rss.values()):.0f} MB (web includes the gunicorn master)"
        )
        latency = first_step_latency(stack, args.runs)
        print(
            f"API execute -> first step started: median {statistics.median(latency):.1f} ms, "
            f"p95 {pct(latency, 0.95):.1f} ms ({args.runs} runs)"
        )
        for length in CHAINS:
            STEP_TIMES.clear()
            gaps = chain_overhead(stack, max(3, args.runs // 10) if length == 20 else 2, length)
            floor = statistics.median(STEP_TIMES)
            print(
                f"{length}-step chain: median per-step overhead {statistics.median(gaps):.1f} ms, "
                f"p95 {pct(gaps, 0.95):.1f} ms (end of one step to start of the next); a step itself takes "
                f"{floor:.1f} ms, so each costs {(floor + statistics.median(gaps)) / floor:.2f}x that"
            )
    finally:
        stack.close()


if __name__ == "__main__":
    main()
