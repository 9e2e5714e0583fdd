"""Listing benchmark: every run and event filter of the API and the UI, with a page of them stored and with many.

    python3 bench/listing.py [--runs 10000] [--events 10000] [--repeat 20]

Prints the median answer time of each listing with a full page of runs and events stored, then with
`--runs` runs and `--events` events stored, and the ratio. Target: every listing within 2x of its time on
the small store (each is served from an index or a bounded scan); filters that match few runs answer a
fuller page on the large store, so their ratio includes that.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from dataclasses import replace

import requests
from service_stack import AUTH, TOKEN, Stack, wait

from runner.engine import RunState
from runner.store.repo_events import RepoEventStore
from runner.store.runs import RunStore

WORKSPACE = """
tasks:
  one:
    flow:
      s: { type: script, script: "true" }
"""

# (what, path and query): the API's filters, the UI's (its branch filter and its table fragment)
LISTINGS = [
    ("runs", "/api/runs"),
    ("runs of a workspace", "/api/runs?workspace=local"),
    ("runs of a task", "/api/runs?workspace=local&task=one"),
    ("runs by status", "/api/runs?status=failed"),
    ("runs by source (rare)", "/api/runs?source=ui"),
    ("runs by branch (rare)", "/api/runs?branch=release"),
    ("runs by source and branch", "/api/runs?source=cron&branch=release"),
    ("runs since an hour ago", "/api/runs?since={hour_ago}"),
    ("events", "/api/events"),
    ("events of a workspace", "/api/events?workspace=local"),
    ("UI runs, by branch", "/runs?branch=release&fragment=1"),
]


def signed_in(stack: Stack) -> requests.Session:
    """A browser session of the UI (its pages take no bearer token)."""
    browser = requests.Session()
    form = browser.get(f"{stack.url}/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    browser.post(f"{stack.url}/login", data={"token": TOKEN, "csrf_token": token}, timeout=10)
    return browser


def timed(stack: Stack, path: str, repeat: int, browser: requests.Session) -> float | None:
    """The median answer time, or None for a filter this version does not offer."""
    url = stack.url + path.format(hour_ago=time.time() - 3600)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        answer = browser.get(url, headers=AUTH, timeout=60, allow_redirects=False)
        times.append((time.perf_counter() - start) * 1000)
        if answer.status_code == 400 and "unknown query parameter" in answer.text:
            return None
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
    return statistics.median(times)


def fill(stack: Stack, runs: int, events: int) -> None:
    """Store `runs` runs (most from cron on main, a few from the UI on release) and `events` events."""
    run_id = stack.execute("one")["id"]
    wait(lambda: stack.run(run_id)["status"] in ("queued", "running", "failed", "succeeded"), 10, "a run")
    template = RunState.from_dict(json.loads(stack.redis.get(f"strom:job:{run_id}")))
    store, now = RunStore(stack.redis), time.time()
    for start in range(0, runs, 1000):
        with stack.redis.pipeline() as pipe:
            for i in range(start, min(runs, start + 1000)):
                rare = i % 500 == 0
                state = replace(
                    template,
                    id=f"bench{i:06d}",
                    created_at=now - 86400 + i,
                    source="ui" if rare else "cron",
                    git={"branch": "release" if rare else "main"},
                )
                store.stage(pipe, None, state, now)
            pipe.execute()
    repo_events = RepoEventStore(stack.redis)
    for i in range(events):
        repo_events.receive("local", {"kind": "push", "delivery": f"bench-{i}"}, ignored="benchmark", now=now - i)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    stack = Stack(WORKSPACE)
    try:
        wait(lambda: requests.get(f"{stack.url}/api/ready", timeout=1).ok, 30, "the web")
        fill(stack, 60, 60)  # a full page of each, as with many stored
        browser = signed_in(stack)
        small = {what: timed(stack, path, args.repeat, browser) for what, path in LISTINGS}
        fill(stack, args.runs, args.events)
        print(
            f"listing medians ({args.repeat} requests each): 60 runs and events stored (a full page) -> "
            f"{args.runs} runs, {args.events} events"
        )
        worst = 0.0
        for what, path in LISTINGS:
            before, large = small[what], timed(stack, path, args.repeat, browser)
            if before is None or large is None:
                print(f"  {what:<28} (not offered)")
                continue
            ratio = large / before
            worst = max(worst, ratio)
            print(f"  {what:<28} {before:7.1f} ms -> {large:7.1f} ms  ({ratio:.1f}x)")
        print(f"  worst ratio {worst:.1f}x (target <= 2x)")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
