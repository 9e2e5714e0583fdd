"""The pre-receive hook of hosted repositories: refuse a push whose `.strom/` is invalid.

git runs it in the bare repository with the pushed objects quarantined; every line on stdin is
`<old> <new> <ref>`. What it prints reaches the pusher as `remote: ...` lines.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .trees import TreeError, read_tree

__all__ = ["check", "main"]

ZERO = "0" * 40


def check(git_dir: Path, new: str, ref: str) -> list[str]:
    """Error lines for `ref` at commit `new` (empty when its definitions are valid or absent)."""
    from ..spec import load_texts
    from ..spec.limits import SpecLimits

    limits = SpecLimits(**json.loads(os.environ.get("STROM_SPEC_LIMITS") or "{}"))
    texts, paths, oversized = read_tree(git_dir, new, max_file=limits.file_size, max_files=limits.files)
    if not texts and not oversized:
        print(f"strom: {ref} has no .strom/ workflow files; nothing will run for it")
        return []
    result = load_texts(texts, root=Path("/"), file_exists=lambda rel: rel in paths, limits=limits, sizes=oversized)
    problems = list(result.problems)
    channels = os.environ.get("STROM_NOTIFY_CHANNELS")
    if result.workspace is not None and channels is not None:
        from ..spec.notify_rules import unknown_channels

        problems += unknown_channels(result.workspace, json.loads(channels))
    errors: list[str] = []
    for problem in problems:
        (errors.append if problem.is_error else print)(problem.format())
    return errors


def main(stdin=sys.stdin) -> int:
    git_dir = Path(os.environ.get("GIT_DIR", "."))
    refused = 0
    for line in stdin:
        parts = line.split()
        if len(parts) != 3:
            continue
        _old, new, ref = parts
        if new == ZERO or not ref.startswith(("refs/heads/", "refs/tags/")):
            continue
        try:
            errors = check(git_dir, new, ref)
        except TreeError as exc:
            errors = [f"cannot read {new[:12]}: {exc}"]
        if errors:
            refused += 1
            for error in errors:
                print(error)
            print(
                f"strom: push of {ref} refused: {len(errors)} problem(s) in .strom/ at {new[:12]}; "
                "fix them and push again (`strom validate` shows them locally)"
            )
    sys.stdout.flush()
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
