"""The overview, Strom's landing page: each workspace with its branches and open pull requests, and for each the
latest status of every task, kept live by a Server-Sent Events stream of run changes."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from flask import Response, render_template, request, url_for

from runner.gitops.pulls import Pulls
from runner.store import keys
from runner.store.runs import branch_row, pull_row

from ..access.session import page
from ..context import current_service
from ..streams import HEARTBEAT_MS, MAX_STREAM_S, event_stream
from . import bp

if TYPE_CHECKING:
    from runner.engine.state import RunState
    from runner.runs.service import Service
    from runner.workspace_config import WorkspaceConfig

_CURSOR = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
OPEN_PULLS = 50  # pull request rows per workspace, the most recently active


@dataclass
class Row:
    key: str  # runner.store.runs.branch_row or pull_row
    label: str
    title: str = ""
    pull: int | None = None
    cells: dict[str, RunState] = field(default_factory=dict)  # task -> its newest run on this row


@dataclass
class WorkspaceView:
    name: str
    tasks: list[str]
    rows: list[Row]


def workspace_view(service: Service, ws: WorkspaceConfig) -> WorkspaceView:
    latest = service.runs.latest(ws.name)
    pulls = Pulls(service.redis, ws.name)
    open_numbers = pulls.open_numbers(OPEN_PULLS)
    facts = pulls.facts_of(open_numbers)
    heads = cast("list[str]", service.redis.hkeys(keys.heads(ws.name))) if ws.kind != "folder" else []
    rows: dict[str, Row] = {}
    for branch in ([ws.default_branch] if ws.kind != "folder" else []) + sorted(heads):
        rows.setdefault(branch_row(branch), Row(branch_row(branch), branch))
    for number in open_numbers:
        rows[pull_row(number)] = Row(pull_row(number), f"#{number}", facts[number].get("title", ""), number)
    for (row, task), state in sorted(latest.items()):
        if row not in rows:
            if not row.startswith(branch_row("")):
                continue  # a closed pull request's
            name = row.removeprefix(branch_row(""))
            rows[row] = Row(row, name or "working folder")
        rows[row].cells[task] = state
    order = sorted(rows.values(), key=_row_order(ws))
    return WorkspaceView(ws.name, sorted({task for _, task in latest}), order)


def _row_order(ws: WorkspaceConfig):
    def key(row: Row):
        if row.pull is not None:
            return (2, -row.pull, "")
        return (0 if row.label == ws.default_branch else 1, 0, row.label)

    return key


@bp.get("/")
@page("read")
def home():
    service = current_service()
    views = [workspace_view(service, ws) for ws in service.config.workspaces.values()]
    if request.args.get("fragment"):
        return render_template("overview_grid.html", views=views, now=time.time())
    changes = url_for("ui.run_changes", after=service.runs.last_change())
    return render_template("overview.html", views=views, now=time.time(), changes=changes)


@bp.get("/changes")
@page("read")
def run_changes():
    """Run status changes as they happen (`event: run`), resuming after Last-Event-ID or `?after=`."""
    after = request.headers.get("Last-Event-ID") or request.args.get("after") or "$"
    if after != "$" and not _CURSOR.fullmatch(after):
        return Response(f"after must be a change id such as 1700000000000-0, not {after[:40]!r}\n", 400)
    return event_stream(_follow(current_service(), after))


def _follow(service: Service, after: str):
    yield "retry: 1000\n\n"
    cursor = service.runs.last_change() if after == "$" else after
    closes_at = time.monotonic() + MAX_STREAM_S
    while time.monotonic() < closes_at:  # then close: the browser reconnects from its last id
        changes = service.runs.changes(cursor, HEARTBEAT_MS, client=service.follower)
        for change in changes:
            cursor = change.id
            data = {"run": change.run, "workspace": change.workspace, "task": change.task, "status": change.status}
            yield f"id: {change.id}\nevent: run\ndata: {json.dumps(data)}\n\n"
        if not changes:
            yield f": heartbeat {int(time.time())}\n\n"
