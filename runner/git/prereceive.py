"""The pre-receive hook of hosted repositories: refuse a push whose `.strom/` is invalid.

git runs it in the bare repository with the pushed objects quarantined; every line on stdin is
`<old> <new> <ref>`. What it prints reaches the pusher as `remote: ...` lines.

A push served by `strom web` is checked in the web process (`answer`, through `hookclient`); this
module's `main` checks a push made any other way (straight into the repository on disk).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from ..errors import StromError
from ..spec.limits import SpecLimits
from .objects import Objects, is_sha

__all__ = ["answer", "check", "main"]

ZERO = "0" * 40


def check(
    objects: Objects,
    new: str,
    ref: str,
    limits: SpecLimits,
    channels: Iterable[str] | None,
    out: list[str],
    providers: Iterable[str] | None = None,
    libraries: Mapping[str, str] | None = None,
    workspaces: Iterable[str] = (),
) -> list[str]:
    """Error lines for `ref` at commit `new` (empty when its definitions are valid or absent); notes and
    warnings go to `out`. `libraries`: the server's libraries' files, which the definitions may use."""
    from ..spec import load_texts

    texts, exists, oversized = objects.definitions(new, max_file=limits.file_size, max_files=limits.files)
    if not texts and not oversized:
        out.append(f"strom: {ref} has no .strom/ workflow files; nothing will run for it")
        return []
    texts.update(libraries or {})
    result = load_texts(
        texts, root=Path("/"), file_exists=exists, limits=limits, sizes=oversized, workspaces=workspaces
    )
    problems = list(result.problems)
    if result.workspace is not None:
        from ..spec.server_names import unknown_server_names

        problems += unknown_server_names(result.workspace, channels, providers)
    errors: list[str] = []
    for problem in problems:
        (errors if problem.is_error else out).append(problem.format())
    return errors


def answer(
    git_dir: Path,
    refs: str,
    limits: SpecLimits,
    channels: Iterable[str] | None,
    env: Mapping[str, str] | None = None,
    providers: Iterable[str] | None = None,
    libraries: Callable[[], dict[str, str]] | None = None,
    workspaces: Iterable[str] = (),
) -> tuple[str, int]:
    """(what the pusher sees, the hook's exit status) for the hook's stdin `refs`; `env` holds the
    quarantine variables git gave the hook (the pushed objects are visible only through them)."""
    import git

    repo = git.Repo(git_dir)
    repo.git.update_environment(**dict(env or {}))
    objects = Objects(repo)
    out: list[str] = []
    refused = 0
    try:
        for line in refs.splitlines():
            parts = line.split()
            if len(parts) != 3:
                continue
            _old, new, ref = parts
            if new == ZERO or not ref.startswith(("refs/heads/", "refs/tags/")) or not is_sha(new):
                continue
            try:
                shared = libraries() if libraries is not None else None
                errors = check(objects, new, ref, limits, channels, out, providers, shared, workspaces)
            except ValueError as exc:
                errors = [f"cannot read {new[:12]}: {exc}"]
            except StromError as exc:  # the server's libraries could not be read: nothing may be checked
                errors = [f"strom: {exc}"]
            if errors:
                refused += 1
                out += errors
                out.append(
                    f"strom: push of {ref} refused: {len(errors)} problem(s) in .strom/ at {new[:12]}; "
                    "fix them and push again (`strom validate` shows them locally)"
                )
    finally:
        objects.close()
    return "".join(f"{line}\n" for line in out), 1 if refused else 0


def main(stdin=sys.stdin) -> int:
    limits = SpecLimits(**json.loads(os.environ.get("STROM_SPEC_LIMITS") or "{}"))
    channels = os.environ.get("STROM_NOTIFY_CHANNELS")
    output, status = answer(
        Path(os.environ.get("GIT_DIR", ".")), stdin.read(), limits, json.loads(channels) if channels else None
    )
    sys.stdout.write(output)
    sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
