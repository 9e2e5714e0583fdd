"""`/hooks/alertmanager/<trigger>`: Prometheus Alertmanager notifications for `type: alert` triggers.

The caller proves it knows the trigger's `secret` as for generic hooks (a bearer token, which is what
Alertmanager's `http_config.authorization` sends, or an HMAC of the body). Each alert of the
notification is stored as its own repository event whose delivery id is the alert's fingerprint,
state and start (runner/forges/alertmanager.py): Alertmanager's repeats of a firing alert are
recognised as deliveries seen before and start nothing. Then each is processed like any event
(runner/gitops/intake.py matches the trigger's `labels` and `status`).
"""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, request

from runner.forges.alertmanager import alert_delivery, read_notification
from runner.forges.bounds import checked
from runner.forges.errors import PayloadError
from runner.forges.event import EventKind, EventSource, RepoEvent
from runner.gitops.intake import process
from runner.spec.model import TriggerType

from ..context import current_service
from ..errors import ApiError
from .bodies import read_body
from .hooks import authenticated, find_trigger, presented_secret, refusal

__all__ = ["bp"]

bp = Blueprint("alert_hooks", __name__)


@bp.post("/hooks/alertmanager/<name>")
def receive(name: str):
    found = find_trigger(name, TriggerType.ALERT)
    presented, signature = presented_secret()
    if presented is None and not signature:
        raise refusal(presented, signature)  # before the body is even read
    raw = read_body(current_service().config)
    if not authenticated(found, presented, signature, raw):
        raise refusal(presented, signature)
    ws, _trigger, _checkout = found
    try:
        alerts = read_notification(json.loads(raw))
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_payload", "the body is not valid JSON (or nests too deeply)") from None
    except PayloadError as exc:
        raise ApiError(400, "bad_payload", str(exc)) from None
    service = current_service()
    answers = []
    for alert in alerts:
        event = checked(
            RepoEvent(
                source=EventSource.ALERTMANAGER,
                kind=EventKind.ALERT,
                repo=ws.repo or ws.name,
                delivery=alert_delivery(name, alert),
                forge_event=name,
                actor=alert["receiver"] or request.remote_addr or "",
            )
        )
        event_id, duplicate = service.repo_events.receive(ws.name, event.to_dict(), extra={"hook": name, **alert})
        record = process(service, event_id) or {}
        answer = {
            "event": event_id,
            "fingerprint": alert["fingerprint"],
            "status": alert["status"],
            "outcome": record.get("status"),
            "runs": record.get("runs") or [],
        }
        if duplicate:
            answer["duplicate"] = True
        if record.get("reason") or record.get("error"):
            answer["reason"] = record.get("error") or record.get("reason")
        answers.append(answer)
    return jsonify(workspace=ws.name, alerts=answers), 202
