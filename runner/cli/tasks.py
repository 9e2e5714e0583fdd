from __future__ import annotations

import click
from rich.table import Table

from ..spec import ABSENT
from .common import console, load_or_exit, resolve_workspace

__all__ = ["tasks_command"]


@click.command("tasks")
@click.argument("path", required=False)
def tasks_command(path: str | None) -> None:
    """List the tasks of the workspace at PATH, with their inputs and triggers."""
    ws = load_or_exit(resolve_workspace(path))
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("Task", "Steps", "Inputs", "Triggers", "Description"):
        table.add_column(column, overflow="fold")
    for name, task in sorted(ws.tasks.items()):
        inputs = ", ".join(
            f"{n}{'*' if f.required and f.default is ABSENT else ''}:{f.type}" for n, f in task.input.items()
        )
        triggers = ", ".join(_trigger(t) for t in ws.triggers.values() if t.task == name)
        table.add_row(name, str(len(task.flow)), inputs or "-", triggers or "-", task.description or task.label or "")
    console.print(table)


def _trigger(trigger) -> str:
    """`nightly (scheduler: At 04:00, Europe/Copenhagen)`: a schedule in English, other triggers by type."""
    if trigger.cron:
        from ..spec.schedules import describe

        return f"{trigger.name} ({trigger.type.value}: {describe(trigger.cron)}, {trigger.timezone})"
    return f"{trigger.name} ({trigger.type.value})"
