"""UI pages benchmark: p50 and p99 of every page with 10,000 runs and 10,000 events stored.

    python3 bench/pages.py [--runs 10000] [--events 10000] [--repeat 100]

Each page is asked `--repeat` times by a signed-in browser session against the real web server (gunicorn,
gevent workers) and its own Redis. Goal: every page under 100 ms at p99.
"""

from __future__ import annotations

import argparse
import statistics
import time

import requests
from listing import WORKSPACE, fill, signed_in
from service_stack import Stack, wait

from runner.forges.event import PullRequest
from runner.gitops.pulls import Pulls


def percentiles(stack: Stack, browser: requests.Session, path: str, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        answer = browser.get(stack.url + path, timeout=60, allow_redirects=False)
        times.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return statistics.median(times), cuts[98]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    stack = Stack(WORKSPACE)
    try:
        wait(lambda: requests.get(f"{stack.url}/api/ready", timeout=1).ok, 30, "the web")
        fill(stack, args.runs, args.events)
        Pulls(stack.redis, "local").remember(PullRequest(7, "opened", "A change", "ab" * 20, "topic", "main"))
        run_id = stack.redis.zrevrange("strom:runs", 0, 0)[0]
        event_id = stack.redis.zrevrange("strom:repo-events", 0, 0)[0]
        browser = signed_in(stack)
        pages = [
            ("overview", "/"),
            ("overview, live fragment", "/?fragment=1"),
            ("runs", "/runs"),
            ("runs by branch", "/runs?branch=release"),
            ("a run", f"/runs/{run_id}"),
            ("tasks", "/tasks"),
            ("events", "/events"),
            ("an event", f"/events/{event_id}"),
            ("workers", "/workers"),
            ("a pull request", "/pulls/local/7"),
            ("trends of a task", "/trends/local/one"),
        ]
        print(f"UI pages with {args.runs} runs and {args.events} events stored ({args.repeat} requests each)")
        worst = 0.0
        for what, path in pages:
            p50, p99 = percentiles(stack, browser, path, args.repeat)
            worst = max(worst, p99)
            print(f"  {what:<26} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")
        print(f"  worst p99 {worst:.1f} ms (goal < 100 ms)")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
