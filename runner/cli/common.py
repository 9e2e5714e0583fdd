"""Helpers shared by commands: finding the workspace and printing problems."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.text import Text

from ..spec.layout import STROM_DIR, WORKFLOW_DIRS

if TYPE_CHECKING:  # the loader is imported by the commands that load workflows, not by `strom up`
    from ..spec import LoadResult, Workspace

__all__ = [
    "console",
    "err_console",
    "load_local",
    "load_or_exit",
    "local_config",
    "print_problems",
    "resolve_workspace",
]

console = Console(highlight=False, soft_wrap=True)
err_console = Console(highlight=False, soft_wrap=True, stderr=True)


def resolve_workspace(path: str | None) -> Path:
    """The workspace root for PATH: a directory holding .strom/ (or Strøm's .workflows/), that directory itself,
    or the nearest one above (up to the repository's top), else PATH."""
    target = Path(path or ".").resolve()
    if target.name in WORKFLOW_DIRS and target.is_dir():
        return target.parent
    if target.is_file():
        raise click.UsageError(f"{path} is a file; pass the directory that holds {STROM_DIR}/")
    if not target.exists():
        raise click.UsageError(f"{path} does not exist")

    def holds(folder: Path) -> bool:
        return any((folder / name).is_dir() for name in WORKFLOW_DIRS)

    probe = target
    while not holds(probe) and probe.parent != probe:
        if (probe / ".git").exists():
            break
        probe = probe.parent
    return probe if holds(probe) else target


def print_problems(result: LoadResult, to: Console = err_console) -> None:
    for problem in result.problems:
        colour = "red" if problem.is_error else "yellow"
        head = Text.assemble(
            (f"{problem.file}:{problem.line}:{problem.column}", "bold"),
            ": ",
            (problem.severity.value, f"bold {colour}"),
            ": ",
            problem.message,
        )
        to.print(head)
        if problem.hint:
            to.print(Text(f"    fix: {problem.hint}", style="bright_black"))


def local_config(root: Path):
    """The configuration of a `strom.yaml` next to the workspace's .strom/, or None (none, or one this machine
    cannot read: a server's file naming its secrets)."""
    if not (root / "strom.yaml").is_file():
        return None
    from ..config import ConfigError, load_config

    try:
        return load_config(base_dir=root)
    except ConfigError:
        return None


def load_local(root: Path):
    """The workspace at `root`, with the libraries of a `strom.yaml` next to its .strom/ (if it has any)."""
    from ..spec import load_texts, load_workspace

    config = local_config(root)
    if config is None:
        return load_workspace(root)
    from ..git.repos import Repos
    from ..runs.libraries import Libraries
    from ..store.definitions import read_folder

    texts = read_folder(root)
    if config.libraries:
        texts.update(Libraries(config, lambda: Repos(config.data_dir)).texts())
    return load_texts(texts, root=root, workspaces=config.workspaces)


def load_or_exit(root: Path) -> Workspace:
    """The workspace at `root`; its problems are printed, and the process exits, when it is not valid."""
    result = load_local(root)
    if not result.ok or result.workspace is None:  # ok: a workspace, without errors
        print_problems(result)
        errors = len(result.errors)
        err_console.print(Text(f"\n{errors} error(s) in {STROM_DIR}/ - nothing was run.", style="bold red"))
        raise SystemExit(1)
    return result.workspace
