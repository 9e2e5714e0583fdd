"""Recovery after a Redis restart, and how fast retention deletes.

    python3 bench/recovery.py [--away 15] [--events 100000]

Recovery: a stack (web, scheduler, worker; Redis with AOF on) runs one-step runs, one started
through the API every 100 ms; Redis is stopped (SIGTERM, then SIGKILL) for `--away` seconds and
started again. The figure is the time from Redis answering again to the first run started after
that reaching `succeeded`, with no Strom process restarted. Target: <= 5 s.

Retention: `--events` repository events older than `retention.max_age` are stored, then one
retention pass deletes them; the figure is events deleted per second (it must exceed any rate the
intake accepts, about 700/s).
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import threading
import time

import requests
from service_stack import AUTH, Stack, wait

WORKSPACE = """
tasks:
  one:
    flow:
      s: { type: script, script: "true" }
"""


def recovery(away: float, sig: int) -> float:
    stack = Stack(WORKSPACE, appendonly=True)
    try:
        stack.start_workers()
        started: list[tuple[float, str]] = []
        stop = threading.Event()

        def load():
            while not stop.wait(0.1):
                try:
                    answer = requests.post(
                        f"{stack.url}/api/workspaces/local/tasks/one/execute", json={}, headers=AUTH, timeout=5
                    )
                    if answer.status_code == 201:
                        started.append((time.monotonic(), answer.json()["id"]))
                except requests.RequestException:
                    pass

        threading.Thread(target=load, daemon=True).start()
        wait(lambda: len(started) > 10, 30, "runs before the outage")
        stack.stop_redis(sig)
        time.sleep(away)
        stack.start_redis()
        back = time.monotonic()
        wait(
            lambda: any(at > back and stack.run(run)["status"] == "succeeded" for at, run in list(started)),
            60,
            "a run after the outage",
        )
        done = time.monotonic()
        stop.set()
        wait(lambda: all(stack.run(run)["status"] == "succeeded" for _, run in started), 60, "every run")
        return done - back
    finally:
        stack.close()


def retention(events: int) -> float:
    import redis
    from service_stack import free_port

    from runner.service.up import redis_binary
    from runner.store.repo_events import RepoEventStore

    port = free_port()
    server = subprocess.Popen(
        [redis_binary(), "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, decode_responses=True)
        wait(client.ping, 10, "redis")
        store = RepoEventStore(client)
        record = {"source": "github", "kind": "push", "ref": "refs/heads/main", "sha": "0" * 40}
        for i in range(events):
            store.receive("local", {**record, "delivery": f"d{i}"}, now=1000.0 + i, ignored="old")
        begin = time.perf_counter()
        deleted = store.delete_older_than(time.time() - 86400)
        seconds = time.perf_counter() - begin
        assert deleted == events and client.zcard("strom:repo-events") == 0, deleted
        return events / seconds
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--away", type=float, default=15.0)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        figures = [recovery(args.away, sig) for _ in range(args.repeat)]
        print(
            f"recovery after Redis was away {args.away:.0f}s ({signal.Signals(sig).name}): "
            f"first new run succeeded {statistics.median(figures):.2f}s after Redis answered again (target <= 5 s)"
        )
    print(f"retention: {args.events} old events deleted at {retention(args.events):,.0f} events/s in one pass")


if __name__ == "__main__":
    main()
