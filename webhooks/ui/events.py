"""The repository events pages: every webhook, push and poll received, what it matched, the runs it started
or why it started none, and redelivery of a stored event for admins."""

from __future__ import annotations

import json

from flask import abort, flash, redirect, render_template, request, url_for

from ..access.session import page
from ..api.events import event_json
from ..api.params import unix_time
from ..context import current_service
from . import bp

EVENT_STATUSES = ("queued", "done", "ignored", "waiting", "failed")
PAGE = 50
SCAN = 500  # stored events read at most per page when filters drop some


@bp.get("/events")
@page("read")
def events():
    service = current_service()
    workspace = request.args.get("workspace") or None
    status = request.args.get("status") or None
    source = request.args.get("source") or None
    before = unix_time(request.args.get("before", ""))
    if workspace is not None and workspace not in service.config.workspaces:
        workspace = None
    filtered = status is not None or source is not None  # else every record read is a row: read one page
    records = service.repo_events.list(workspace, limit=SCAN if filtered else PAGE, before=before)
    rows = [
        event_json(r)
        for r in records
        if (status is None or r.get("status") == status)
        and (source is None or (r.get("event") or {}).get("source") == source)
    ][:PAGE]
    older = None
    if len(rows) == PAGE:
        older = rows[-1]["received_at"]
    elif filtered and len(records) == SCAN:
        older = records[-1]["received_at"]
    return render_template(
        "events.html",
        rows=rows,
        older=older,
        workspaces=list(service.config.workspaces),
        statuses=EVENT_STATUSES,
        flt={"workspace": workspace, "status": status, "source": source},
    )


@bp.get("/events/<event_id>")
@page("read")
def event(event_id):
    record = current_service().repo_events.load(event_id)
    if record is None:
        abort(404, description=f"no event {event_id}")
    data = event_json(record, detail=True)
    return render_template(
        "event.html", e=data, pretty=json.dumps({"event": data["event"], "extra": data["extra"]}, indent=2, default=str)
    )


@bp.post("/events/<event_id>/redeliver")
@page("admin")
def redeliver(event_id):
    service = current_service()
    if service.repo_events.load(event_id) is None:
        abort(404, description=f"no event {event_id}")
    service.repo_events.requeue(event_id)
    flash(f"Event {event_id} queued again; a run it started before is not started twice.", "ok")
    return redirect(url_for("ui.event", event_id=event_id))
