"""`/hooks/<name>`: Strøm-compatible generic webhooks that start the task of a `webhook` trigger.

The caller proves it knows the trigger's `secret` with `Authorization: Bearer <secret>`, a
`?secret=` query parameter, or an HMAC-SHA256 of the body in `X-Hub-Signature-256: sha256=<hex>`
(or `X-Strom-Signature`). The secret is a plain value or a reference to a configured secret: no
template is rendered for a caller who has not proven anything. A name no trigger has is answered
exactly as a hook whose secret was not given (or did not match), and so is a name two workspaces
both define, so names cannot be guessed.
The body is read with a cap and parsed only after the caller is authenticated. The request is
stored first; `mode: sync` then waits up to `timeout_secs` and answers with the run's result.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from flask import Blueprint, jsonify, request

from runner.errors import StromError
from runner.forges.bounds import checked
from runner.forges.errors import PayloadError
from runner.forges.event import EventKind, EventSource, RepoEvent
from runner.gitops.intake import process
from runner.gitops.match import hook_trigger
from runner.spec.model import TriggerType, WebhookMode
from runner.spec.triggers import secret_reference
from runner.templating import SecretMap

from ..context import current_service
from ..errors import ApiError
from .bodies import read_body

if TYPE_CHECKING:
    from runner.runs.service import Service

__all__ = ["authenticated", "bp", "find_trigger", "presented_secret", "refusal"]

bp = Blueprint("generic_hooks", __name__)
log = logging.getLogger("strom.web")
MAX_FORM_FIELDS = 1000
_HIDDEN_HEADERS = {
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-hub-signature-256",
    "x-strom-signature",
    "x-api-key",
    "x-auth-token",
    "x-gitlab-token",
}


def find_trigger(name: str, kind: TriggerType = TriggerType.WEBHOOK):
    """(workspace config, trigger, checkout) of the one trigger of `kind` that `name` calls (a webhook's `name`,
    an alert trigger's own name), or None."""
    service = current_service()
    found = []
    for ws in service.config.workspaces.values():
        try:
            checkout = service.checkouts.head(ws, fetch=False)
        except StromError:
            continue
        trigger = hook_trigger(checkout.workspace.triggers.values(), kind, name)
        if trigger is not None:
            found.append((ws, trigger, checkout))
    if len(found) > 1:  # never let one workspace's definitions take over another's hook
        log.warning(
            "%s %r is defined in workspaces %s: every call is refused until one is renamed",
            "webhook" if kind is TriggerType.WEBHOOK else f"{kind.value} trigger",
            name,
            ", ".join(sorted(ws.name for ws, _, _ in found)),
        )
        return None
    return found[0] if found else None


def presented_secret() -> tuple[str | None, str | None]:
    """(the secret the caller sent as a bearer token or query parameter, its HMAC signature of the body)."""
    auth = request.headers.get("Authorization", "")
    presented = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    signature = request.headers.get("X-Hub-Signature-256") or request.headers.get("X-Strom-Signature")
    return presented or request.args.get("secret"), signature


def refusal(presented: str | None, signature: str | None) -> ApiError:
    """The answer to a caller who did not prove it knows the hook's secret (or named no hook at all)."""
    if presented is not None:
        return ApiError(401, "unauthorized", "the webhook secret does not match")
    if signature:
        return ApiError(401, "unauthorized", "the body's HMAC-SHA256 signature does not match the webhook secret")
    return ApiError(
        401,
        "unauthorized",
        "this webhook needs its secret: send `Authorization: Bearer <secret>`, "
        "`?secret=<secret>` or `X-Hub-Signature-256: sha256=<hmac of the body>`",
    )


def _expected_secret(ws, trigger, checkout) -> str | None:
    """The hook's secret: the plain value, or the configured secret it names (None when it names none)."""
    name = secret_reference(trigger.secret)
    if name is None:
        return trigger.secret
    try:
        return SecretMap(current_service().contexts.secrets(ws.name, checkout.digest, checkout.workspace))[name]
    except KeyError:
        log.warning(
            "webhook %r names secret %r, which is not configured: every call is refused", trigger.hook_name, name
        )
        return None


def authenticated(found, presented: str | None, signature: str | None, body: bytes) -> bool:
    if found is None:
        return False
    ws, trigger, checkout = found
    if not trigger.secret:
        return True
    expected = _expected_secret(ws, trigger, checkout)
    if expected is None:
        return False
    if presented is not None:
        return hmac.compare_digest(presented.encode(), expected.encode())
    if signature:
        digest = "sha256=" + hmac.new(expected.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(signature.strip().encode(), digest.encode())
    return False


def _body(raw: bytes):
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    if request.mimetype == "application/json" or text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            if request.mimetype == "application/json":
                raise ApiError(400, "bad_payload", "the body is not valid JSON (or nests too deeply)") from None
    if request.mimetype == "application/x-www-form-urlencoded":
        try:  # the stream is read already: the form comes from the text
            return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
        except ValueError:
            raise ApiError(400, "bad_payload", f"the form has more than {MAX_FORM_FIELDS} fields") from None
    return text


@bp.route("/hooks/<name>", methods=["POST", "PUT", "GET"])
def receive(name: str):
    found = find_trigger(name)
    presented, signature = presented_secret()
    if (found is None or found[1].secret) and presented is None and not signature:
        raise refusal(presented, signature)  # before the body is even read
    raw = read_body(current_service().config)  # read alike whether the hook exists or not
    if not authenticated(found, presented, signature, raw):
        raise refusal(presented, signature)
    ws, trigger, _checkout = found
    extra = {
        "hook": name,
        "method": request.method,
        "body": _body(raw),
        "query": {k: v for k, v in request.args.items() if k != "secret"},
        "headers": {k: v for k, v in request.headers.items() if k.lower() not in _HIDDEN_HEADERS},
    }
    key = request.headers.get("Idempotency-Key") or request.headers.get("X-Request-Id")
    delivery = f"{name}:{key}" if key else None
    try:
        event = checked(
            RepoEvent(
                source=EventSource.WEBHOOK,
                kind=EventKind.WEBHOOK,
                repo=ws.repo or ws.name,
                delivery=delivery,
                forge_event=name,
                actor=request.remote_addr or "",
            )
        )
    except PayloadError as exc:
        raise ApiError(400, "bad_request", str(exc).replace("the payload's delivery", "the Idempotency-Key")) from None
    service = current_service()
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
    if trigger.mode is not WebhookMode.SYNC:
        return jsonify(answer), 202
    state = _wait(service, runs[0], trigger.timeout_secs)
    if state is None:
        raise ApiError(
            410, "gone", f"run {runs[0]} was deleted while this request waited for it", event=event_id, run=runs[0]
        )
    answer.update(run_status=state.status.value, output=state.output, error=state.error)
    return jsonify(answer), 200 if state.status.terminal else 202


def _wait(service: Service, run_id: str, timeout: float):
    deadline = time.monotonic() + timeout
    state = service.runs.load(run_id)
    while state is not None and not state.status.terminal and time.monotonic() < deadline:
        time.sleep(0.05)
        state = service.runs.load(run_id)
    return state
