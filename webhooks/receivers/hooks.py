"""`/hooks/<name>`: Strøm-compatible generic webhooks that start the task of a `webhook` trigger.

The caller proves it knows the trigger's `secret` with `Authorization: Bearer <secret>`, a
`?secret=` query parameter, or an HMAC-SHA256 of the body in `X-Hub-Signature-256: sha256=<hex>`
(or `X-Strom-Signature`). The request is stored first; `mode: sync` then waits up to
`timeout_secs` and answers with the run's result.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time

from flask import Blueprint, current_app, jsonify, request

from runner.errors import StromError
from runner.forges.event import RepoEvent
from runner.gitops.intake import process
from runner.templating import SecretMap, render_value

from ..errors import ApiError

bp = Blueprint("generic_hooks", __name__)

MAX_BODY = 10 * 1024 * 1024
_HIDDEN_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-hub-signature-256", "x-strom-signature",
                   "x-api-key", "x-auth-token", "x-gitlab-token"}


def _service():
    return current_app.extensions["strom"]


def _find(name: str):
    """(workspace config, trigger, checkout) of the one webhook trigger called `name`."""
    service = _service()
    found = []
    for ws in service.config.workspaces.values():
        try:
            checkout = service.checkouts.head(ws, fetch=False)
        except StromError:
            continue
        found += [(ws, trigger, checkout) for trigger in checkout.workspace.triggers.values()
                  if trigger.type.value == "webhook" and trigger.hook_name == name]
    if not found:
        raise ApiError(404, "unknown_hook", f"no webhook trigger is named {name!r}")
    if len(found) > 1:  # never let one workspace's definitions take over another's hook
        raise ApiError(409, "ambiguous_hook", f"webhook {name!r} is defined in workspaces "
                                              f"{', '.join(sorted(ws.name for ws, _, _ in found))}; rename one")
    return found[0]


def _check_secret(trigger, checkout, body: bytes) -> None:
    if not trigger.secret:
        return
    service = _service()
    secrets = SecretMap(service.contexts.secrets(checkout.digest, checkout.workspace))
    try:
        expected = str(render_value(trigger.secret, {"secret": secrets, "secrets": secrets},
                                    f"{trigger.location} (secret of webhook {trigger.hook_name!r})"))
    except StromError as exc:
        raise ApiError(500, "hook_misconfigured", str(exc)) from None
    presented = None
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        presented = auth[7:].strip()
    presented = presented or request.args.get("secret")
    if presented is not None:
        if hmac.compare_digest(presented.encode(), expected.encode()):
            return
        raise ApiError(401, "unauthorized", "the webhook secret does not match")
    signature = request.headers.get("X-Hub-Signature-256") or request.headers.get("X-Strom-Signature")
    if signature:
        digest = "sha256=" + hmac.new(expected.encode(), body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(signature.strip().encode(), digest.encode()):
            return
        raise ApiError(401, "unauthorized", "the body's HMAC-SHA256 signature does not match the webhook secret")
    raise ApiError(401, "unauthorized", "this webhook needs its secret: send `Authorization: Bearer <secret>`, "
                                        "`?secret=<secret>` or `X-Hub-Signature-256: sha256=<hmac of the body>`")


def _body(raw: bytes):
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    if request.mimetype == "application/json" or text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            if request.mimetype == "application/json":
                raise ApiError(400, "bad_payload", "the body is not valid JSON") from None
    if request.mimetype == "application/x-www-form-urlencoded":
        return request.form.to_dict()
    return text


@bp.route("/hooks/<name>", methods=["POST", "PUT", "GET"])
def receive(name: str):
    request.max_content_length = MAX_BODY
    raw = request.get_data(cache=True)
    ws, trigger, checkout = _find(name)
    _check_secret(trigger, checkout, raw)
    extra = {
        "hook": name, "method": request.method, "body": _body(raw),
        "query": {k: v for k, v in request.args.items() if k != "secret"},
        "headers": {k: v for k, v in request.headers.items() if k.lower() not in _HIDDEN_HEADERS},
    }
    key = request.headers.get("Idempotency-Key") or request.headers.get("X-Request-Id")
    delivery = f"{name}:{key}" if key else None
    event = RepoEvent(source="webhook", kind="webhook", repo=ws.repo or ws.name, delivery=delivery,
                      forge_event=name, actor=request.remote_addr or "")
    service = _service()
    event_id, duplicate = service.repo_events.receive(ws.name, event.to_dict(), extra=extra)
    record = process(service, event_id) or {}
    runs = record.get("runs") or []
    answer = {"id": event_id, "workspace": ws.name, "status": record.get("status")}
    if duplicate:
        answer["duplicate"] = True
    if record.get("error") or record.get("reason"):
        answer["reason"] = record.get("error") or record.get("reason")
    if not runs:
        return jsonify(answer), 202 if record.get("status") != "failed" else 422
    answer["run"] = runs[0]
    answer["url"] = service.config.run_url(runs[0])
    if trigger.mode != "sync":
        return jsonify(answer), 202
    state = _wait(service, runs[0], trigger.timeout_secs)
    answer.update(run_status=state.status.value, output=state.output, error=state.error)
    return jsonify(answer), 200 if state.status.terminal else 202


def _wait(service, run_id: str, timeout: float):
    deadline = time.monotonic() + timeout
    state = service.jobs.load(run_id)
    while state is not None and not state.status.terminal and time.monotonic() < deadline:
        time.sleep(0.05)
        state = service.jobs.load(run_id)
    return state
