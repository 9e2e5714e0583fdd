"""`git push` to a hosted workspace, timed from the pusher's side.

    python3 bench/git_push.py [--pushes 20]

A commit changing one file of a 40-file repository is pushed with the stock git client over HTTP to
`strom web` (gunicorn); the pushed `.strom/` is checked before the push is accepted, and the push
becomes an event whose run's first step starts on a worker. Printed, as medians:

- push: the client's `git push`, start to end (the receive path: git http-backend, the check, the
  event stored before the client is answered);
- push -> first step: from the start of `git push` to the first step starting;
- the floor: `git push` of the same change to a bare repository on disk with no hooks, measured in
  the same run (what git itself costs).

Target on 2 cores: push -> first step <= 120 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from service_stack import TOKEN, Stack, bench_repository, git, wait

PIPELINE = """
tasks:
  ci:
    flow:
      s: { type: script, script: "cat VERSION" }
triggers:
  on-main: { type: push, task: ci, branches: [main] }
"""


def timed_push(work: Path, remote: str, i: int) -> tuple[str, float, float]:
    """Commit a change, push it; (sha, when the push started, how long it took in ms)."""
    (work / "VERSION").write_text(f"{i}\n")
    git(work, "commit", "-q", "-am", f"change {i}")
    sha = git(work, "rev-parse", "HEAD")
    started = time.time()
    git(work, "push", "-q", remote, "main")
    return sha, started, (time.time() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="strom-bench-push-"))
    work = bench_repository(root / "work", PIPELINE)
    floor_repo = root / "floor.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(floor_repo))

    stack = Stack("tasks: {}\n", workers=1, env={"STROM_WORKSPACES": json.dumps({"site": {"hosted": True}})})
    try:
        stack.start_workers()
        remote = stack.url.replace("http://", f"http://strom:{TOKEN}@") + "/git/site.git"
        git(work, "push", "-q", remote, "main")
        git(work, "push", "-q", str(floor_repo), "main")
        pushes, firsts, floors = [], [], []
        for i in range(args.pushes + 2):
            sha, started, took = timed_push(work, remote, i + 1)

            def first_step(sha=sha):
                for run_id in stack.redis.zrevrange("strom:runs", 0, 3):
                    state = stack.run(run_id)
                    if state.get("commit") == sha and state["steps"] and state["steps"][0].get("started_at"):
                        return state["steps"][0]["started_at"]
                return None

            first = wait(first_step, 30, "the first step")
            floor = timed_push(work, str(floor_repo), 1000 + i)[2]
            if i >= 2:  # the first pushes warm the processes
                pushes.append(took)
                firsts.append((first - started) * 1000)
                floors.append(floor)
        push, first, floor = (statistics.median(x) for x in (pushes, firsts, floors))
        print(f"git push to a hosted workspace: {len(pushes)} pushes of a one-file change (40-file repository)")
        print(f"  push (client)          {push:8.1f} ms")
        print(f"  push -> first step     {first:8.1f} ms   (target <= 120)")
        print(
            f"  floor: git push to a bare repository on disk, no hooks   {floor:6.1f} ms "
            f"(push -> first step is {first / floor:.1f}x the floor)"
        )
    finally:
        stack.close()


if __name__ == "__main__":
    main()
