"""Step logs: the whole log as JSON or text, or followed live as Server-Sent Events.

Following resumes after `Last-Event-ID` (or `?after=`), sends a comment every 15 s so proxies keep
the connection, and ends with an `end` event once the run (or the step) has finished.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING

from flask import Response, jsonify, request, stream_with_context

from runner.store.logs import RUN, STATUS

from ..access.tokens import requires
from ..context import current_service
from ..errors import ApiError
from ..streams import HEARTBEAT_MS, MAX_STREAM_S, event_stream
from . import bp
from .params import number

if TYPE_CHECKING:
    from runner.runs.service import Service

MAX_HEARTBEAT_MS = 60_000
_LINE_ID = re.compile(r"[0-9]{1,20}(-[0-9]{1,20})?")


def _matches(line, step: str | None) -> bool:
    return step is None or line.step == step or line.step.startswith(step + "[")


def _event(line) -> str:
    if line.stream == STATUS:
        data = {"step": line.step, "attempt": line.attempt, "status": line.text, "time": line.time}
        return f"id: {line.id}\nevent: status\ndata: {json.dumps(data)}\n\n"
    return f"id: {line.id}\nevent: line\ndata: {json.dumps(line.to_dict())}\n\n"


_FINAL = frozenset({"succeeded", "failed", "timed_out", "cancelled", "skipped"})


def _ended(line, step: str | None) -> str | None:
    """The final status that ends this stream, if `line` marks it: the run's end, or the step's."""
    if line.stream == RUN:
        return line.text
    if step is not None and line.stream == STATUS and line.step == step and line.text in _FINAL:
        return line.text
    return None


def _follow(service: Service, run_id: str, step: str | None, after: str, heartbeat_ms: int):
    cursor = after or "0-0"
    yield "retry: 2000\n\n"
    state = service.runs.load(run_id)
    if state is not None and state.status.terminal:
        for line in _every_line(service, run_id, step, cursor):
            yield _event(line)
        yield f"event: end\ndata: {json.dumps({'status': state.status.value})}\n\n"
        return
    closes_at = time.monotonic() + MAX_STREAM_S
    while time.monotonic() < closes_at:  # then close: the follower reconnects from its last id
        lines = service.logs.follow(run_id, cursor, block_ms=heartbeat_ms)
        for line in lines:
            cursor = line.id
            if _matches(line, step) and line.stream != RUN:
                yield _event(line)
            ended = _ended(line, step)
            if ended is not None:
                yield f"event: end\ndata: {json.dumps({'status': ended})}\n\n"
                return
        if not lines:
            if service.runs.load(run_id) is None:
                yield f"event: end\ndata: {json.dumps({'status': 'deleted'})}\n\n"
                return
            yield f": heartbeat {int(time.time())}\n\n"


def _logs(run_id: str, step: str | None):
    service = current_service()
    state = service.runs.load(run_id)
    if state is None:
        raise ApiError(404, "not_found", f"no run {run_id}")
    if step is not None and step not in state.steps:
        raise ApiError(404, "not_found", f"run {run_id} has no step {step!r}")
    after = request.headers.get("Last-Event-ID") or request.args.get("after") or "0-0"
    if not _LINE_ID.fullmatch(after):
        raise ApiError(
            400,
            "bad_request",
            f"after (or Last-Event-ID) must be a line id such as 1700000000000-0, not {after[:40]!r}",
        )
    follow = request.args.get("follow", "").lower() in (
        "1",
        "true",
        "yes",
    ) or "text/event-stream" in request.headers.get("Accept", "")
    if follow:
        heartbeat = number("heartbeat_ms", request.args.get("heartbeat_ms"), MAX_HEARTBEAT_MS) or HEARTBEAT_MS
        return event_stream(_follow(service, run_id, step, after, max(100, heartbeat)))
    if request.args.get("format") == "text":  # streamed: however long the log, only a page is in memory
        text = (
            f"[{ln.step}] {ln.text}\n" if step is None else f"{ln.text}\n"
            for ln in _every_line(service, run_id, step, after)
        )
        return Response(stream_with_context(text), mimetype="text/plain")
    page = service.logs.page(run_id, after=after, step=step)
    return jsonify(lines=[ln.to_dict() for ln in page.lines], next=page.next, more=page.more)


def _every_line(service: Service, run_id: str, step: str | None, after: str):
    """Every line after `after`, read a page at a time."""
    while True:
        page = service.logs.page(run_id, after=after, step=step)
        yield from page.lines
        if not page.more:
            return
        after = page.next


@bp.get("/runs/<run_id>/logs")
@requires("read")
def run_logs(run_id):
    return _logs(run_id, None)


@bp.get("/runs/<run_id>/steps/<step>/logs")
@requires("read")
def step_logs(run_id, step):
    return _logs(run_id, step)
