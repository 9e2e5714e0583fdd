from __future__ import annotations

import json
import time

import click
from rich.text import Text

from ..spec import STROM_DIR
from .common import console, load_local, print_problems, resolve_workspace

__all__ = ["validate_command"]


@click.command("validate")
@click.argument("path", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print problems as JSON (for editors and CI).")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def validate_command(path: str | None, as_json: bool, strict: bool) -> None:
    """Check the .strom/ files of the workspace at PATH (default: here).

    Every problem is reported with file:line:column and a fix. Exit status 0 when
    the workspace is valid, 1 when it is not.
    """
    root = resolve_workspace(path)
    started = time.perf_counter()
    result = load_local(root)
    elapsed = time.perf_counter() - started
    failed = bool(result.errors) or result.workspace is None or (strict and bool(result.warnings))
    if as_json:
        ws = result.workspace
        click.echo(
            json.dumps(
                {
                    "valid": not failed,
                    "workspace": str(root),
                    "files": list(ws.files) if ws else [],
                    "tasks": sorted(ws.tasks) if ws else [],
                    "problems": [p.to_dict() for p in result.problems],
                },
                indent=2,
            )
        )
        raise SystemExit(1 if failed else 0)
    print_problems(result, console)
    ws = result.workspace
    if failed or ws is None:  # failed when there is none
        console.print(
            Text(
                f"✗ {len(result.errors)} error(s), {len(result.warnings)} warning(s) in {STROM_DIR}/", style="bold red"
            )
        )
        raise SystemExit(1)
    summary = (
        f"✓ {len(ws.files)} file(s): {len(ws.tasks)} task(s), {len(ws.actions)} action(s), "
        f"{len(ws.triggers)} trigger(s) - valid ({elapsed * 1000:.0f} ms)"
    )
    console.print(Text(summary, style="bold green"))
