"""Time to load and validate a generated workspace of 500 tasks and 5,000 steps (target: under 2 s).

python3 bench/validate_large.py [--tasks 500] [--steps 10] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.spec import load_workspace

ACTIONS = """\
actions:
  build:
    type: script
    script: |
      echo "building {{ input.target }} for {{ input.env }}"
      echo 'OUTPUT: {"artifact": "{{ input.target }}.tar.gz"}'
    input:
      target: { type: string, required: true }
      env: { type: string, default: staging, options: [staging, production] }
  test:
    type: script
    language: python
    script: |
      import os
      print("testing", os.environ.get("INPUT_SUITE"))
    input:
      suite: { type: string }
    retry: { max_attempts: 2, delay: 5s }
  notify:
    type: http
    url: "https://hooks.example.com/{{ input.channel }}"
    json: { text: "{{ input.text }}" }
    input:
      channel: { type: string, default: ops }
      text: { type: string }
"""


def task_text(t: int, steps: int) -> str:
    lines = [
        f"  service-{t}:",
        f"    description: Build, test and ship service {t}",
        "    input:",
        "      env: { type: string, default: staging }",
        '      version: { type: string, default: "1.0" }',
        "    timeout: 1h",
        "    flow:",
    ]
    for s in range(steps):
        name = f"step-{s}"
        deps = f"[step-{s - 1}]" if s else "[]"
        kind = s % 5
        if kind == 0:
            lines += [
                f"      {name}:",
                "        action: build",
                f"        depends_on: {deps}",
                "        input:",
                f'          target: "svc{t}-{{{{ input.version }}}}-{s}"',
                '          env: "{{ input.env }}"',
            ]
        elif kind == 1:
            lines += [
                f"      {name}:",
                "        action: test",
                f"        depends_on: {deps}",
                f"        when: \"{{{{ input.env != 'production' or step_{s - 1}.output.artifact }}}}\"",
                f'        input: {{ suite: "unit-{s}" }}',
            ]
        elif kind == 2:
            lines += [
                f"      {name}:",
                "        type: script",
                f"        depends_on: {deps}",
                f'        for_each: ["eu-{t}", "us-{t}"]',
                f'        script: "deploy --region {{{{ each.item }}}} --step {s}"',
                "        env:",
                f'          VERSION: "{{{{ input.version }}}}-{t}"',
            ]
        elif kind == 3:
            lines += [
                f"      {name}:",
                "        action: notify",
                f"        depends_on: {deps}",
                "        continue_on_failure: true",
                f'        input: {{ text: "service {t} step {s}: {{{{ job.id }}}}" }}',
            ]
        else:
            lines += [
                f"      {name}:",
                "        type: script",
                f"        depends_on: {deps}",
                "        timeout: 5m",
                "        script: |",
                f"          echo \"checking {t}/{s} at {{{{ git.short_sha | default('local') }}}}\"",
            ]
    return "\n".join(lines)


def generate(root: Path, tasks: int, steps: int) -> int:
    (root / ".strom" / "services").mkdir(parents=True)
    (root / ".strom" / "actions.yaml").write_text(ACTIONS)
    per_file = 50
    for f in range(0, tasks, per_file):
        body = "\n".join(task_text(t, steps) for t in range(f, min(f + per_file, tasks)))
        (root / ".strom" / "services" / f"part-{f // per_file:02d}.yaml").write_text("tasks:\n" + body + "\n")
    return sum(p.stat().st_size for p in (root / ".strom").rglob("*.yaml"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        size = generate(Path(tmp), args.tasks, args.steps)
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            result = load_workspace(tmp)
            times.append(time.perf_counter() - started)
            assert result.ok, [p.format() for p in result.errors[:5]]
        steps = sum(len(t.flow) for t in result.workspace.tasks.values())
        print(f"workspace: {len(result.workspace.tasks)} tasks, {steps} steps, {size / 1e6:.1f} MB of YAML")
        print(
            f"validate: median {statistics.median(times):.2f} s, best {min(times):.2f} s, "
            f"first (cold caches) {times[0]:.2f} s, over {args.runs} runs"
        )


if __name__ == "__main__":
    main()
