"""A task's trends: duration and outcome of its last 100 runs as a server-drawn SVG chart (no script), and
its slowest steps on average."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from flask import abort, render_template

from runner.store import RunFilter

from ..access.session import page
from ..context import current_service
from . import bp

__all__ = ["Column", "chart", "slowest_steps"]

RUNS = 100
W, H, GAP = 8, 120, 2


@dataclass(frozen=True)
class Column:
    run: str
    status: str
    seconds: float | None
    x: int
    y: int
    height: int


def chart(runs) -> tuple[list[Column], float]:
    """Columns, oldest first, scaled to the longest finished run (unfinished runs are a short stub)."""
    ordered = list(reversed(runs))
    durations = [(r.finished_at - (r.started_at or r.created_at)) if r.finished_at else None for r in ordered]
    longest = max((d for d in durations if d is not None), default=0.0) or 1.0
    columns = []
    for index, (run, seconds) in enumerate(zip(ordered, durations)):
        height = max(2, round(H * (seconds / longest))) if seconds is not None else 4
        columns.append(Column(run.id, run.status.value, seconds, index * (W + GAP), H - height, height))
    return columns, longest


def slowest_steps(runs, count: int = 5) -> list[tuple[str, float, int]]:
    """(step, median seconds, how many runs had it) of the steps that took longest, median over the runs."""
    times: dict[str, list[float]] = {}
    for run in runs:
        for step in run.steps.values():
            if step.started_at and step.finished_at and not step.is_instance:
                times.setdefault(step.name, []).append(step.finished_at - step.started_at)
    ranked = sorted(((name, statistics.median(v), len(v)) for name, v in times.items()), key=lambda t: -t[1])
    return ranked[:count]


@bp.get("/trends/<workspace>/<task>")
@page("read")
def trends(workspace: str, task: str):
    service = current_service()
    if workspace not in service.config.workspaces:
        abort(404, description=f"no workspace {workspace!r}")
    runs = service.runs.list(RunFilter(workspace=workspace, task=task), limit=RUNS).runs
    columns, longest = chart(runs)
    finished = [c.seconds for c in columns if c.seconds is not None]
    succeeded = sum(1 for c in columns if c.status == "succeeded")
    return render_template(
        "trends.html",
        workspace=workspace,
        task=task,
        columns=columns,
        longest=longest,
        width=max(len(columns) * (W + GAP), W),
        height=H,
        bar_w=W,
        median=statistics.median(finished) if finished else None,
        success=round(100 * succeeded / len(columns)) if columns else None,
        slowest=slowest_steps(runs),
    )
