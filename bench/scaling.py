"""Scale-out benchmark: how drained runs/s grow with worker processes, and the size of the Strom image.

    python3 bench/scaling.py [--drain 200] [--workers 1,2,4] [--concurrency 1] [--image strom:dev]

Each worker count gets a fresh stack (private Redis, web, scheduler); `--drain` one-step runs are queued
first, then the workers start and the time until every run has succeeded is measured. On a 2-core machine
the figures flatten past two workers: the steps' processes and Strom's share the same cores.
"""

from __future__ import annotations

import argparse
import subprocess

from service import WORKSPACE, drain
from service_stack import Stack


def image_size(image: str) -> str:
    done = subprocess.run(
        ["docker", "image", "inspect", image, "--format", "{{.Size}}"], capture_output=True, text=True
    )
    if done.returncode != 0:
        return f"image {image}: not built (docker build -f deploy/docker/Dockerfile -t {image} .)"
    return f"image {image}: {int(done.stdout) / 1e6:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drain", type=int, default=200)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--image", default="strom:dev")
    args = parser.parse_args()
    base = None
    for count in (int(n) for n in args.workers.split(",")):
        stack = Stack(WORKSPACE, workers=count, concurrency=args.concurrency)
        try:
            rate = drain(stack, args.drain)
        finally:
            stack.close()
        base = base or rate
        print(
            f"{count} worker process(es) x concurrency {args.concurrency}: {rate:.1f} runs/s "
            f"({rate / base:.2f}x one worker)"
        )
    print(image_size(args.image))


if __name__ == "__main__":
    main()
