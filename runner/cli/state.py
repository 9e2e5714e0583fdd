"""`strom state TASK`: a task's state snapshots on a server, and their files."""

from __future__ import annotations

import json
import sys
import time

import click
from rich.text import Text

from ..sizes import format_size
from .common import console
from .remote import _WORKSPACE, _call, _client, _server_options

__all__ = ["state_command"]


@click.command("state")
@click.argument("task")
@click.option("-w", "--workspace", **_WORKSPACE)
@click.option(
    "--files",
    "snapshot",
    is_flag=False,
    flag_value="newest",
    default=None,
    metavar="[ID]",
    help="Download the files of a snapshot (the newest without ID) as a gzipped tar.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Where --files goes (default: stdout)."
)
@click.option("--json", "as_json", is_flag=True, help="The snapshots as JSON.")
@_server_options
def state_command(task, workspace, snapshot, output, as_json, server, token):
    """Show the state TASK keeps between runs (newest first): what its steps printed as `STATE: {json}` and
    the files they wrote to $STATE_OUT_DIR (see docs/task-state.md)."""
    client = _client(server, token)
    snapshots = _call(client.task_state, workspace, task)["snapshots"]
    if snapshot is not None:
        _download(client, task, snapshots, snapshot, output)
        return
    if as_json:
        click.echo(json.dumps(snapshots, indent=2))
        return
    if not snapshots:
        console.print(f"task {task!r} of workspace {workspace!r} keeps no state yet")
        return
    for entry in snapshots:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry.get("created") or 0))
        files = f"files {format_size(entry.get('size') or 0)}" if entry.get("files") else "no files"
        console.print(
            Text.assemble((entry["id"][:12], "bold"), f"  {when} UTC  run {entry['job']} step {entry['step']}  {files}")
        )
        if entry.get("data") is not None:
            console.print(Text("  " + json.dumps(entry["data"], indent=2).replace("\n", "\n  ")))


def _download(client, task: str, snapshots: list[dict], wanted: str, output: str | None) -> None:
    chosen = (
        snapshots[0]
        if wanted == "newest" and snapshots
        else next((s for s in snapshots if s["id"] == wanted or s["id"].startswith(wanted)), None)
    )
    if chosen is None:
        raise click.ClickException(
            f"task {task!r} keeps no state snapshot {wanted!r}"
            if wanted != "newest"
            else f"task {task!r} keeps no state yet"
        )
    if not chosen.get("files"):
        raise click.ClickException(f"state snapshot {chosen['id'][:12]} has no files (only data)")
    if output is None:
        if sys.stdout.isatty():
            raise click.ClickException("the files are a gzipped tar: give -o FILE, or redirect standard output")
        _call(client.download, chosen["files"], sys.stdout.buffer)
        return
    with open(output, "wb") as target:
        size = _call(client.download, chosen["files"], target)
    click.echo(f"wrote {format_size(size)} to {output}", err=True)
