from __future__ import annotations

import click
from rich.table import Table

from ..spec import ABSENT
from .common import console, load_or_exit, resolve_workspace

__all__ = ["tasks_command"]


@click.command("tasks")
@click.argument("path", required=False)
@click.option(
    "-w",
    "--workspace",
    help="List a server's workspace instead (with --server/STROM_URL and --token/STROM_TOKEN): "
    "what is paused, by whom and why, shows too.",
)
@click.option("--server", envvar="STROM_URL", default="http://127.0.0.1:8080", show_default=True, metavar="URL")
@click.option("--token", envvar="STROM_TOKEN", metavar="TOKEN")
def tasks_command(path: str | None, workspace: str | None, server: str, token: str | None) -> None:
    """List the tasks of the workspace at PATH, with their inputs and triggers (schedules in English)."""
    if workspace is not None:
        if path is not None:
            raise click.UsageError("give a PATH (the files here) or --workspace (a server's), not both")
        _remote(workspace, server, token)
        return
    ws = load_or_exit(resolve_workspace(path))
    table = _table(("Task", "Steps", "Inputs", "Triggers", "Description"))
    for name, task in sorted(ws.tasks.items()):
        inputs = ", ".join(
            f"{n}{'*' if f.required and f.default is ABSENT else ''}:{f.type}" for n, f in task.input.items()
        )
        triggers = ", ".join(_trigger(t) for t in ws.triggers.values() if t.task == name)
        table.add_row(name, str(len(task.flow)), inputs or "-", triggers or "-", task.description or task.label or "")
    console.print(table)


def _table(columns: tuple[str, ...]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _trigger(trigger) -> str:
    """`nightly (scheduler: At 04:00, Europe/Copenhagen)`: a schedule in English, other triggers by type."""
    if trigger.cron:
        from ..spec.schedules import describe

        return f"{trigger.name} ({trigger.type.value}: {describe(trigger.cron)}, {trigger.timezone})"
    return f"{trigger.name} ({trigger.type.value})"


def _paused(record: dict | None) -> str:
    if not record:
        return ""
    why = f": {record['reason']}" if record.get("reason") else ""
    return f"paused by {record['by']}{why} ({record.get('skipped', 0)} skipped)"


def _remote(workspace: str, server: str, token: str | None) -> None:
    from ..client import ApiError, Client

    try:
        tasks = Client(server, token).tasks(workspace)["tasks"]
    except ApiError as exc:
        raise click.ClickException(str(exc)) from exc
    table = _table(("Task", "Steps", "Inputs", "Triggers", "State", "Description"))
    for task in tasks:
        inputs = ", ".join(f"{n}{'*' if f['required'] else ''}:{f['type']}" for n, f in task["input"].items())
        triggers = ", ".join(
            f"{t['name']} ({t['type']}{': ' + t['schedule'] if t.get('schedule') else ''})"
            + (" paused" if t.get("paused") else "")
            for t in task["triggers"]
        )
        table.add_row(
            task["name"],
            str(len(task["steps"])),
            inputs or "-",
            triggers or "-",
            _paused(task.get("paused")) or "active",
            task.get("description") or task.get("label") or "",
        )
    console.print(table)
