"""Repository events as received and what became of them (runs started, or why not)."""

from __future__ import annotations

from flask import jsonify, request

from ..access.tokens import requires
from ..context import current_service
from ..errors import ApiError
from . import bp
from .params import page_limit, timestamp


def event_json(record: dict, detail: bool = False) -> dict:
    event = record.get("event") or {}
    out = {
        "id": record["id"],
        "workspace": record["workspace"],
        "received_at": record["received_at"],
        "status": record["status"],
        "reason": record.get("reason"),
        "error": record.get("error"),
        "runs": record.get("runs") or [],
        "attempts": record.get("attempts", 0),
        "source": event.get("source"),
        "kind": event.get("kind"),
        "ref": event.get("ref"),
        "sha": event.get("sha"),
        "actor": event.get("actor"),
        "delivery": event.get("delivery"),
    }
    if detail:
        out["event"] = event
        out["extra"] = record.get("extra") or {}
    return out


@bp.get("/events")
@requires("read")
def list_events():
    limit = page_limit()
    records = current_service().repo_events.list(request.args.get("workspace"), limit=limit, before=timestamp("before"))
    return jsonify(
        events=[event_json(r) for r in records],
        next_before=records[-1]["received_at"] if len(records) == limit else None,
    )


@bp.get("/events/<event_id>")
@requires("read")
def get_event(event_id):
    record = current_service().repo_events.load(event_id)
    if record is None:
        raise ApiError(404, "not_found", f"no event {event_id}")
    return jsonify(event_json(record, detail=True))
