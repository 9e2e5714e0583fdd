"""Repository event benchmarks: webhook ingest under gunicorn, and push to first step.

    python3 bench/webhooks.py [--requests 5000] [--clients 16] [--pushes 30] [--history 10000]

Ingest: signed GitHub push webhooks (the push.branch fixture, each with its own delivery id) for a
branch no trigger matches, sent by keep-alive clients in two processes to `strom web` (gunicorn,
2 workers); every one is stored before it is answered. Targets on 2 cores: >= 500 req/s, p99 <= 50 ms.
Measured twice: on an empty store, and with 10,000 events stored before (the same, as a goal).

Push to first step: a commit is pushed to a local repository (untimed), then its signed push webhook
is sent; the figure is the time from sending the webhook to the run's first step starting on a
worker, including the git fetch, the snapshot and loading `.strom/` from that commit.
Target: median <= 150 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import multiprocessing
import statistics
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from service_stack import ROOT, Stack, bench_repository, git, wait

FIXTURE = ROOT / "tests" / "fixtures" / "forges" / "github" / "push.branch.json"
SECRET = "bench-webhook-secret"
ZERO = "0" * 40
PIPELINE = """
tasks:
  ci:
    flow:
      s: { type: script, script: "cat VERSION" }
triggers:
  on-release: { type: push, task: ci, branches: [release] }
  on-main: { type: push, task: ci, branches: [main] }
"""


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def signed_headers(body: bytes) -> dict[str, str]:
    return {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "Content-Type": "application/json",
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        "User-Agent": "GitHub-Hookshot/bench",
    }


# ------------------------------------------------------------------ ingest
def _client(args) -> list[float]:
    url, body, count = args
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    out = []
    for _ in range(count):
        started = time.perf_counter()
        conn.request("POST", "/webhooks/github", body=body, headers=signed_headers(body))
        answer = conn.getresponse()
        answer.read()
        if answer.status != 202:
            raise RuntimeError(f"answered {answer.status}")
        out.append((time.perf_counter() - started) * 1000)
    conn.close()
    return out


def _process_clients(args) -> list[float]:
    import concurrent.futures

    url, body, threads, per_thread = args
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return [x for chunk in pool.map(_client, [(url, body, per_thread)] * threads) for x in chunk]


def _store_history(stack: Stack, events: int) -> None:
    """`events` repository events already stored, as a server that has been receiving them for a while."""
    from runner.store.repo_events import RepoEventStore

    store, now = RepoEventStore(stack.redis), time.time()
    for i in range(events):
        store.receive("app", {"kind": "push", "delivery": f"history-{i}"}, ignored="history", now=now - 3600 - i)


def ingest(requests_total: int, clients: int, history: int = 0) -> None:
    body = FIXTURE.read_bytes()  # a push to refs/heads/main of woodpecker-ci/woodpecker
    repo = json.loads(body)["repository"]["full_name"]
    workspaces = {"app": {"folder": ".", "forge": {"type": "github", "repo": repo, "webhook_secrets": [SECRET]}}}
    stack = Stack(
        PIPELINE.replace("branches: [main]", "branches: [trunk]"),
        workers=0,
        env={"STROM_WORKSPACES": json.dumps(workspaces), "STROM_WEB__WORKERS": "2", "STROM_WEB__THREADS": "8"},
    )
    try:
        _store_history(stack, history)
        _client((stack.url, body, 200))  # warm up both gunicorn workers
        per_process = clients // 2
        per_thread = requests_total // clients
        started = time.perf_counter()
        with multiprocessing.Pool(2) as pool:
            chunks = pool.map(_process_clients, [(stack.url, body, per_process, per_thread)] * 2)
        elapsed = time.perf_counter() - started
        latencies = [x for chunk in chunks for x in chunk]
        stored = stack.redis.zcard("strom:repo-events") - history
        wait(lambda: stack.redis.llen("strom:intake") == 0, 120, "the scheduler to process the events")
        ignored = sum(
            1
            for raw in stack.redis.mget(
                [f"strom:repo-event:{i}" for i in stack.redis.zrange("strom:repo-events", history, -1)]
            )
            if json.loads(raw)["status"] == "ignored"
        )
        print(
            f"webhook ingest: {len(latencies)} signed pushes, {clients} keep-alive clients, gunicorn 2x8 threads, "
            f"{history} events stored before"
        )
        print(f"  throughput        {len(latencies) / elapsed:8.0f} req/s   (target >= 500)")
        print(f"  latency p50       {pct(latencies, 0.5):8.1f} ms")
        print(f"  latency p99       {pct(latencies, 0.99):8.1f} ms      (target <= 50)")
        print(
            f"  stored events     {stored:8d}        (all answered 202 after storing; {ignored} processed "
            f"and ignored: no trigger matches)"
        )
    finally:
        stack.close()


# ------------------------------------------------------------------ push to first step
def push_to_first_step(pushes: int) -> None:
    template = json.loads(FIXTURE.read_bytes())
    stack = None
    try:
        stack_env_dir = Path(__import__("tempfile").mkdtemp(prefix="strom-bench-git-"))
        upstream = stack_env_dir / "upstream.git"
        git(stack_env_dir, "init", "-q", "--bare", "-b", "main", str(upstream))
        work = bench_repository(stack_env_dir / "work", PIPELINE)
        git(work, "remote", "add", "origin", str(upstream))
        git(work, "push", "-q", "origin", "main")
        workspaces = {
            "app": {
                "git": str(upstream),
                "branches": ["main"],
                "forge": {"type": "github", "repo": "bench/app", "webhook_secrets": [SECRET]},
            }
        }
        stack = Stack("tasks: {}\n", workers=1, env={"STROM_WORKSPACES": json.dumps(workspaces)})
        stack.start_workers()
        before = git(work, "rev-parse", "HEAD")
        latencies = []
        for i in range(pushes + 2):
            (work / "VERSION").write_text(f"{i + 1}\n")
            git(work, "commit", "-q", "-am", f"change {i}")
            after = git(work, "rev-parse", "HEAD")
            git(work, "push", "-q", "origin", "main")
            data = {
                **template,
                "ref": "refs/heads/main",
                "before": before,
                "after": after,
                "repository": {**template["repository"], "full_name": "bench/app"},
                "head_commit": {**template["head_commit"], "id": after, "message": f"change {i}"},
                "commits": [
                    {
                        **template["head_commit"],
                        "id": after,
                        "message": f"change {i}",
                        "added": [],
                        "removed": [],
                        "modified": ["VERSION"],
                    }
                ],
            }
            body = json.dumps(data).encode()
            parts = urlsplit(stack.url)
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            sent = time.time()
            conn.request("POST", "/webhooks/github", body=body, headers=signed_headers(body))
            event_id = json.loads(conn.getresponse().read())["id"]
            conn.close()

            def first_step():
                record = json.loads(stack.redis.get(f"strom:repo-event:{event_id}") or "null")
                if not record or not record["runs"]:
                    return None
                state = stack.run(record["runs"][0])
                return state["steps"][0]["started_at"]

            started_at = wait(first_step, 30, "the first step")
            if i >= 2:  # the first pushes warm the mirror and the processes
                latencies.append((started_at - sent) * 1000)
            before = after
        print(
            f"push to first step: {len(latencies)} signed GitHub pushes of a local repository (git fetch, "
            "snapshot, .strom/ from the commit)"
        )
        print(f"  median            {statistics.median(latencies):8.1f} ms      (target <= 150)")
        print(f"  p95               {pct(latencies, 0.95):8.1f} ms")
    finally:
        if stack is not None:
            stack.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pushes", type=int, default=30)
    parser.add_argument("--history", type=int, default=10_000, help="events stored before the second ingest")
    args = parser.parse_args()
    ingest(args.requests, args.clients)
    ingest(args.requests, args.clients, history=args.history)
    push_to_first_step(args.pushes)


if __name__ == "__main__":
    main()
