"""`strom state TASK` and `strom artifacts RUN`: what tasks and runs keep on a server, and downloading it."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import time

import click
from rich.text import Text

from ..sizes import format_size
from ..spec.inputs import parse_pairs
from .common import console
from .remote import _WORKSPACE, _call, _client, _server_options

__all__ = ["artifacts_command", "state_command"]


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
@click.option(
    "--upload",
    "upload",
    multiple=True,
    type=click.Path(exists=True),
    metavar="PATH",
    help="Keep a snapshot with this file or directory (at the top of $STATE_DIR); repeat for more.",
)
@click.option("--set", "pairs", multiple=True, metavar="KEY=VALUE", help="Data of the uploaded snapshot; repeat.")
@click.option(
    "--mode",
    type=click.Choice(["replace", "merge"]),
    default="replace",
    show_default=True,
    help="replace: the snapshot is exactly what you upload; merge: over the newest one.",
)
@_server_options
def state_command(task, workspace, snapshot, output, as_json, upload, pairs, mode, server, token):
    """Show the state TASK keeps between runs (newest first): what its steps printed as `STATE: {json}` and
    the files they wrote to $STATE_OUT_DIR (see docs/task-state.md). With --upload or --set, keep a snapshot
    of your own as the newest (a certificate for a renewal task to start from, say)."""
    client = _client(server, token)
    if upload or pairs:
        try:
            data = dict(parse_pairs(pairs)) if pairs else None
        except ValueError as exc:
            raise click.UsageError(f"--set: {exc}") from None
        kept = _call(client.upload_state, workspace, task, _packed(upload), data, mode)
        click.echo(f"kept state snapshot {kept['id'][:12]} of {task}" + (" with files" if kept.get("files") else ""))
        return
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


def _packed(paths: tuple[str, ...]) -> bytes:
    """The files and directories at `paths` as a gzipped tar, each at its top under its own name."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in paths:
            tar.add(path, arcname=os.path.basename(os.path.normpath(path)))
    return buffer.getvalue() if paths else b""


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
    _save(client, chosen["files"], output)


@click.command("artifacts")
@click.argument("run_id", metavar="RUN")
@click.argument("name", required=False)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Where NAME goes (default: stdout)."
)
@click.option("--json", "as_json", is_flag=True, help="The list as JSON.")
@_server_options
def artifacts_command(run_id, name, output, as_json, server, token):
    """List the artifacts of RUN (files its steps wrote to $ARTIFACTS_DIR), or download the one called NAME
    (`report.html`, or `STEP/report.html` when several steps kept one of that name)."""
    client = _client(server, token)
    listed = _call(client.artifacts, run_id)["artifacts"]
    if name is None:
        if as_json:
            click.echo(json.dumps(listed, indent=2))
        elif not listed:
            console.print(f"run {run_id} kept no artifacts")
        for entry in [] if as_json else listed:
            console.print(f"{entry['step']:<20} {format_size(entry['size'] or 0):>10}  {entry['name']}")
        return
    matches = [a for a in listed if a["name"] == name or f"{a['step']}/{a['name']}" == name]
    if not matches:
        raise click.ClickException(f"run {run_id} kept no artifact {name!r}; `strom artifacts {run_id}` lists them")
    if len(matches) > 1:
        steps = ", ".join(f"{a['step']}/{a['name']}" for a in matches)
        raise click.ClickException(f"several steps kept {name!r}: name one of {steps}")
    _save(client, matches[0]["url"], output)


def _save(client, path: str, output: str | None) -> None:
    if output is None:
        if sys.stdout.isatty():
            raise click.ClickException("give -o FILE, or redirect standard output")
        _call(client.download, path, sys.stdout.buffer)
        return
    with open(output, "wb") as target:
        size = _call(client.download, path, target)
    click.echo(f"wrote {format_size(size)} to {output}", err=True)
