"""The run page's pictures, as plain values: the flow as a layered graph and the timeline.

Steps are placed in columns by their longest path from a step without dependencies; a for_each
step is one node that counts its instances. Pure functions of the task and the run's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["NODE_H", "NODE_W", "Band", "Bar", "Edge", "Graph", "Node", "layout", "timeline"]

NODE_W, NODE_H, GAP_X, GAP_Y, PAD, LABEL_H = 170, 46, 60, 18, 10, 22


@dataclass(frozen=True)
class Node:
    name: str
    status: str
    x: int
    y: int
    instances: str = ""  # "3/5 done" for a for_each step


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: str  # SVG path data


@dataclass(frozen=True)
class Band:
    """A stage: a labelled box behind the columns of its steps."""

    name: str
    x: int
    width: int


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int
    bands: list[Band] = field(default_factory=list)


def _levels(order: list[str], depends: dict[str, tuple[str, ...]]) -> dict[str, int]:
    level: dict[str, int] = {}
    for name in order:  # topological
        level[name] = 1 + max((level[d] for d in depends.get(name, ()) if d in level), default=-1)
    return level


def _instances(state, step: str) -> str:
    runs = [r for r in state.steps.values() if r.step == step and r.is_instance]
    if not runs:
        return ""
    done = sum(1 for r in runs if r.status.terminal)
    return f"{done}/{len(runs)} done"


def layout(
    order: list[str],
    depends: dict[str, tuple[str, ...]],
    state,
    stage_of: dict[str, str] | None = None,
    stage_after: dict[str, tuple[str, ...]] | None = None,
) -> Graph:
    """Place the steps; with stages, each stage is a band and the ordering between stages is not drawn as edges."""
    level = _levels(order, depends)
    stage_of, stage_after = stage_of or {}, stage_after or {}
    top = PAD + (LABEL_H if stage_of else 0)
    rows: dict[int, int] = {}
    nodes, where = [], {}
    for name in order:
        column = level[name]
        row = rows.get(column, 0)
        rows[column] = row + 1
        x, y = PAD + column * (NODE_W + GAP_X), top + row * (NODE_H + GAP_Y)
        run = state.steps.get(name) if state is not None else None
        status = run.status.value if run is not None else "pending"
        nodes.append(Node(name, status, x, y, _instances(state, name) if state is not None else ""))
        where[name] = (x, y)
    edges = []
    for name in order:
        for dep in depends.get(name, ()):
            if dep not in where or dep in stage_after.get(name, ()):
                continue
            (x1, y1), (x2, y2) = where[dep], where[name]
            sx, sy, tx, ty = x1 + NODE_W, y1 + NODE_H // 2, x2, y2 + NODE_H // 2
            mid = (sx + tx) // 2
            edges.append(Edge(dep, name, f"M{sx},{sy} C{mid},{sy} {mid},{ty} {tx},{ty}"))
    width = PAD * 2 + (max(level.values(), default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = top + PAD + max(rows.values(), default=1) * (NODE_H + GAP_Y) - GAP_Y
    return Graph(nodes, edges, width, height, _bands(order, level, stage_of))


def _bands(order: list[str], level: dict[str, int], stage_of: dict[str, str]) -> list[Band]:
    columns: dict[str, list[int]] = {}
    for name in order:
        if name in stage_of:
            columns.setdefault(stage_of[name], []).append(level[name])
    column = NODE_W + GAP_X
    return [
        Band(stage, PAD // 2 + min(cols) * column, (max(cols) - min(cols) + 1) * column - GAP_X + PAD)
        for stage, cols in columns.items()
    ]


@dataclass(frozen=True)
class Bar:
    name: str
    status: str
    left: float  # percent of the run's span
    width: float
    started: float
    seconds: float | None
    stage: str | None = None


def timeline(state, now: float, stage_of: dict[str, str] | None = None) -> list[Bar]:
    """One bar per step that started (for_each instances included), in start order, with its stage if any."""
    stage_of = stage_of or {}
    runs = [r for r in state.steps.values() if r.started_at and not r.is_placeholder]
    if not runs:
        return []
    start = min(r.started_at for r in runs)
    end = max([r.finished_at or now for r in runs] + [state.finished_at or now])
    span = max(end - start, 0.001)
    bars = []
    for run in sorted(runs, key=lambda r: (r.started_at, r.name)):
        finish = run.finished_at or now
        bars.append(
            Bar(
                run.name,
                run.status.value,
                round(100 * (run.started_at - start) / span, 2),
                max(round(100 * (finish - run.started_at) / span, 2), 0.5),
                run.started_at,
                (run.finished_at - run.started_at) if run.finished_at else None,
                stage_of.get(run.step),
            )
        )
    return bars
