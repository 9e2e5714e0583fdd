"""Runs: list, get, cancel, re-run, approve, reject, and answer a question a step asked."""

from __future__ import annotations

from flask import jsonify, request

from runner import runs as run_service
from runner.engine.approvals import MAX_ANSWER
from runner.engine.events import ApprovalDecision, Cancel
from runner.errors import EngineError
from runner.gitops.gates import caller_refusal
from runner.store import RunFilter

from ..access.tokens import caller, requires
from ..context import current_service
from ..errors import ApiError
from ..ratelimits import count_start
from . import bp
from .params import json_object, number, page_limit, short_text, timestamp
from .representations import run_json, run_summary_json

__all__ = ["apply_to_run", "decide_gate", "load_run"]


def load_run(run_id: str):
    """The stored run, or a 404 (for the API, and the MCP tools)."""
    state = current_service().runs.load(run_id)
    if state is None:
        raise ApiError(404, "not_found", f"no run {run_id}")
    return state


@bp.get("/runs")
@requires("read")
def list_runs():
    limit = page_limit()
    flt = RunFilter(
        workspace=request.args.get("workspace"),
        task=request.args.get("task"),
        status=request.args.get("status"),
        trigger=request.args.get("trigger"),
        source=request.args.get("source"),
        branch=request.args.get("branch"),
        pr=_pr_number(),
        since=timestamp("since"),
        until=timestamp("until"),
    )
    page = current_service().runs.list(flt, limit=limit, before=timestamp("before"))
    return jsonify(runs=[run_summary_json(current_service(), s) for s in page.runs], next_before=page.next_before)


def _pr_number() -> int | None:
    value = number("pr", request.args.get("pr"))
    if value is not None and not request.args.get("workspace"):
        raise ApiError(400, "bad_request", "pr needs workspace=<name> as well (numbers are per repository)")
    return value


@bp.get("/runs/<run_id>")
@requires("read")
def get_run(run_id):
    return jsonify(run_json(current_service(), load_run(run_id)))


def apply_to_run(run_id: str, event):
    """The run's state after `event`; 404 for no run, 409 for an event the engine refuses."""
    load_run(run_id)
    try:
        decision = current_service().orchestrator.apply(run_id, event)
    except EngineError as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    return decision.state


@bp.post("/runs/<run_id>/cancel")
@requires("run")
def cancel(run_id):
    state = apply_to_run(run_id, Cancel(short_text(json_object(), "reason") or "cancelled", by=caller()))
    return jsonify(run_json(current_service(), state)), 202


@bp.post("/runs/<run_id>/rerun")
@requires("run")
def rerun(run_id):
    old = load_run(run_id)
    count_start(caller(), old.workspace)
    state = run_service.rerun(current_service(), run_id, by=caller())
    response = jsonify(run_json(current_service(), state))
    response.status_code = 201
    response.headers["Location"] = f"/api/runs/{state.id}"
    return response


def decide_gate(run_id: str, step: str, approved: bool, reason, answer: str | None = None):
    """Decide a gate (or answer a question) as the calling token: its role allows approving; the step's
    `approvers` and the workspace's self-approval rule still apply (the token's name is the person's name)."""
    state = load_run(run_id)
    if step not in state.steps:
        raise ApiError(404, "not_found", f"run {run_id} has no step {step!r}")
    refusal = caller_refusal(current_service(), state, step, caller(), approved)
    if refusal:
        raise ApiError(403, "forbidden", refusal)
    return apply_to_run(run_id, ApprovalDecision(step, approved, caller(), reason, answer))


@bp.post("/runs/<run_id>/steps/<step>/approve")
@requires("approve")
def approve(run_id, step):
    body = json_object()
    approved = body.get("approved", True)
    if not isinstance(approved, bool):
        raise ApiError(400, "bad_request", "approved must be true or false")
    reason = short_text(body, "rejection_reason", "reason")
    answer = short_text(body, "answer", limit=MAX_ANSWER)
    return jsonify(run_json(current_service(), decide_gate(run_id, step, approved, reason, answer)))


@bp.post("/runs/<run_id>/steps/<step>/answer")
@requires("approve")
def answer(run_id, step):
    """The answer to the question an agent step asked: the step goes on with it."""
    text = short_text(json_object(), "answer", limit=MAX_ANSWER)
    if not text or not text.strip():
        raise ApiError(400, "bad_request", 'give the answer: {"answer": "..."}')
    return jsonify(run_json(current_service(), decide_gate(run_id, step, True, None, text)))


@bp.post("/runs/<run_id>/steps/<step>/reject")
@requires("approve")
def reject(run_id, step):
    return jsonify(run_json(current_service(), decide_gate(run_id, step, False, short_text(json_object(), "reason"))))
