"""The web UI's pages: runs, a run (graph, timeline, live logs, approvals), tasks with run forms."""

from __future__ import annotations

import time
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from runner import runs as run_service
from runner.engine import StepStatus
from runner.engine.approvals import MAX_ANSWER
from runner.engine.events import ApprovalDecision, Cancel
from runner.errors import EngineError, InputError, StromError
from runner.gitops.gates import caller_refusal
from runner.store import RunFilter
from runner.store.pauses import Pausable

from ..access.session import check_csrf, local_path, page, sign_in, sign_out, signed_in
from ..api.artifacts import INLINE
from ..api.params import unix_time
from ..api.representations import masker_for, run_artifacts_json, workspace_triggers_json
from ..context import current_service
from ..ratelimits import count_start
from . import bp
from .graph import NODE_H, NODE_W, layout, timeline

STATUSES = ("queued", "running", "waiting", "succeeded", "failed", "timed_out", "cancelled", "skipped")


# ------------------------------------------------------------------ signing in
@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        check_csrf()  # a page elsewhere cannot sign a browser in with a token of its choosing
        token = sign_in(request.form.get("token", "").strip())
        if token is not None:
            target = local_path(request.args.get("next"))  # a path inside the app, below its prefix
            return redirect(request.script_root + target if target else url_for("ui.home"))
        error = "That is not a token this server knows."
    return render_template("login.html", error=error), 401 if error else 200


@bp.post("/logout")
@page("read")
def logout():
    sign_out()
    return redirect(url_for("ui.login"))


# ------------------------------------------------------------------ runs
def _run_filter() -> RunFilter:
    args = request.args
    pr = args.get("pr", "")
    return RunFilter(
        workspace=args.get("workspace") or None,
        task=args.get("task") or None,
        status=args.get("status") or None,
        trigger=args.get("trigger") or None,
        branch=args.get("branch") or None,
        pr=int(pr) if pr.isascii() and pr.isdigit() and len(pr) < 12 and args.get("workspace") else None,
    )


@bp.get("/runs")
@page("read")
def runs():
    service = current_service()
    flt = _run_filter()
    page = service.runs.list(flt, limit=50, before=unix_time(request.args.get("before", "")))  # malformed: none
    listing = page.runs
    fragment = bool(request.args.get("fragment"))
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k not in ("fragment", "before")}
    older = url_for("ui.runs", **args, before=repr(page.next_before)) if page.next_before is not None else None
    live = not fragment and "before" not in request.args  # the newest page follows run changes; older ones stay
    return render_template(
        "runs_table.html" if fragment else "runs.html",
        runs=listing,
        older=older,
        changes=url_for("ui.run_changes", after=service.runs.last_change()) if live else None,
        fragment=url_for("ui.runs", **args, fragment=1),
        flt=flt,
        statuses=STATUSES,
        workspaces=list(service.config.workspaces),
        now=time.time(),
    )


@bp.get("/runs/<run_id>")
@page("read")
def run(run_id):
    service = current_service()
    state = service.runs.load(run_id)
    if state is None:
        abort(404, description=f"no run {run_id}")
    order, depends = [name for name, r in state.steps.items() if not r.is_instance], {}
    stage_of: dict[str, str] = {}
    stage_after: dict[str, tuple[str, ...]] = {}
    try:
        task = service.contexts.for_state(state).task
        order, depends = list(task.order), {name: tuple(step.depends_on) for name, step in task.flow.items()}
        stage_of = {name: step.stage for name, step in task.flow.items() if step.stage}
        stage_after = {name: step.stage_after for name, step in task.flow.items()}
    except Exception:  # noqa: BLE001 - definitions gone (retention): the steps as the state knows them, no edges
        pass
    masker = masker_for(service, state)
    gates = {
        name: {
            "approve": caller_refusal(service, state, name, signed_in().name, True),
            "reject": caller_refusal(service, state, name, signed_in().name, False),
        }
        for name, step in state.steps.items()
        if step.approval is not None and step.status is StepStatus.WAITING
    }
    return render_template(
        "run.html",
        state=state,
        graph=layout(order, depends, state, stage_of, stage_after),
        bars=timeline(state, time.time(), stage_of),
        masker=masker,
        gates=gates,
        node_w=NODE_W,
        node_h=NODE_H,
        focus=request.args.get("step"),
        url=service.config.run_url(state.id),
        artifacts=run_artifacts_json(state),
        inline=INLINE,
    )


def _back(run_id: str, message: str, category: str = "ok"):
    flash(message, category)
    return redirect(url_for("ui.run", run_id=run_id))


@bp.post("/runs/<run_id>/cancel")
@page("run")
def cancel(run_id):
    try:
        current_service().orchestrator.apply(
            run_id, Cancel(request.form.get("reason") or "cancelled", by=signed_in().name)
        )
    except (EngineError, StromError) as exc:
        return _back(run_id, str(exc), "error")
    return _back(run_id, "Cancelling: running steps are being stopped.")


@bp.post("/runs/<run_id>/rerun")
@page("run")
def rerun(run_id):
    old = current_service().runs.load(run_id)
    if old is not None:
        count_start(signed_in().name, old.workspace)
    try:
        state = run_service.rerun(current_service(), run_id, by=signed_in().name)
    except (StromError, KeyError) as exc:  # KeyError: the run's definitions are gone
        return _back(run_id, f"cannot run it again: {exc}", "error")
    flash(f"Re-run of {run_id} started.", "ok")
    return redirect(url_for("ui.run", run_id=state.id))


@bp.post("/runs/<run_id>/steps/<step>/<decision>")
@page("approve")
def decide(run_id, step, decision):
    if decision not in ("approve", "reject", "answer"):
        abort(404)
    service = current_service()
    state = service.runs.load(run_id)
    if state is None or step not in state.steps:
        abort(404, description=f"run {run_id} has no step {step!r}")
    approve, reason = decision != "reject", request.form.get("reason") or None
    answer = (request.form.get("answer") or "")[:MAX_ANSWER] if decision == "answer" else None
    refusal = caller_refusal(service, state, step, signed_in().name, approve)
    if refusal:
        return _back(run_id, refusal, "error")
    try:
        service.orchestrator.apply(run_id, ApprovalDecision(step, approve, signed_in().name, reason, answer))
    except EngineError as exc:
        return _back(run_id, str(exc), "error")
    done = {"approve": "Approved", "reject": "Rejected", "answer": "Answered"}[decision]
    return _back(run_id, f"{done} {step}.")


# ------------------------------------------------------------------ tasks
def _workspace_tasks(name: str):
    service = current_service()
    loaded = run_service.load_definitions(service, name).workspace
    triggers = workspace_triggers_json(service, name, loaded.triggers.values())
    return sorted(loaded.tasks.values(), key=lambda t: t.name), triggers


_WIDGETS = {
    "integer": "number",
    "number": "number",
    "date": "date",
    "datetime": "datetime-local",
    "text": "textarea",
    "json": "textarea",
}


def form_fields(task) -> list[dict]:
    """The run form of a task, from its input schema: one widget per input, in `order`."""
    import json

    from runner.spec.model import ABSENT

    fields = []
    ordered = sorted(task.input.items(), key=lambda item: (item[1].order is None, item[1].order or 0))
    for name, field in ordered:
        default = "" if field.default is ABSENT or field.secret else field.default
        if field.type == "json" and default != "":
            default = json.dumps(default)
        elif isinstance(default, bool):
            default = "true" if default else "false"
        options = list(field.options) if field.options else (["true", "false"] if field.type == "boolean" else None)
        fields.append(
            {
                "name": name,
                "label": field.label or name,
                "type": field.type,
                "options": options,
                "multiple": field.multiple,
                "required": field.required and default == "",
                "default": default if not isinstance(default, (list, tuple)) else list(default),
                "description": field.description,
                "widget": "password" if field.secret else _WIDGETS.get(field.type, "text"),
            }
        )
    return fields


def _tasks_page(workspace, names, listing, triggers, problem, errors, values, opened, status=200, adhoc=None):
    return render_template(
        "tasks.html",
        adhoc=adhoc or {"typed": {"name": "adhoc", "timeout": 300, "ability": "script"}, "errors": {}},
        paused=current_service().pauses.of(workspace) if workspace else {},
        states=current_service().task_states.latest_of(workspace, [t.name for t in listing]) if listing else {},
        workspace=workspace,
        workspaces=names,
        tasks=listing,
        triggers=triggers,
        problem=problem,
        errors=errors,
        values=values,
        opened=opened,
        fields={t.name: form_fields(t) for t in listing},
    ), status


@bp.get("/tasks")
@page("read")
def tasks():
    service = current_service()
    names = list(service.config.workspaces)
    workspace = request.args.get("workspace") or (names[0] if names else None)
    listing, triggers, problem = [], [], None
    if workspace is not None:
        try:
            listing, triggers = _workspace_tasks(workspace)
        except StromError as exc:
            problem = str(exc)
    return _tasks_page(workspace, names, listing, triggers, problem, {}, {}, request.args.get("task"))


@bp.post("/tasks/<workspace>/<any(tasks, triggers):kinds>/<name>/<any(pause, resume):action>")
@page("run")
def pause_or_resume(workspace, kinds, name, action):
    kind = Pausable.TASK if kinds == "tasks" else Pausable.TRIGGER
    reason = request.form.get("reason") or None
    try:
        run_service.set_paused(current_service(), workspace, kind, name, signed_in().name, action == "pause", reason)
    except StromError as exc:  # no such workspace, task or trigger
        abort(404, description=str(exc))
    if action == "pause":
        flash(f"{kind.capitalize()} {name} paused: its triggers do not fire; runs started by hand still start.", "ok")
    else:
        flash(f"{kind.capitalize()} {name} resumed.", "ok")
    return redirect(url_for("ui.tasks", workspace=workspace, task=name if kind is Pausable.TASK else None))


@bp.post("/tasks/<workspace>/<task>/run")
@page("run")
def start(workspace, task):
    try:
        definition = next(t for t in _workspace_tasks(workspace)[0] if t.name == task)
    except (StromError, StopIteration):
        abort(404, description=f"no task {task!r} in workspace {workspace!r}")
    values: dict[str, str | list[str]] = {k: v for k, v in request.form.items(multi=False) if k != "csrf_token"}
    for name, field in definition.input.items():
        if field.multiple:  # one choice is still a list (never split on commas)
            values[name] = [v for v in request.form.getlist(name) if v != ""]
    inputs = {k: v for k, v in values.items() if v not in ("", None, [])}
    count_start(signed_in().name, workspace)
    try:
        state = run_service.execute(current_service(), workspace, task, inputs, source="ui", by=signed_in().name)
    except InputError as exc:
        listing, triggers = _workspace_tasks(workspace)
        kept = {k: v for k, v in values.items() if not getattr(definition.input.get(k), "secret", False)}
        return _tasks_page(
            workspace, list(current_service().config.workspaces), listing, triggers, None, exc.errors, kept, task, 422
        )
    except StromError as exc:
        flash(str(exc), "error")
        return redirect(url_for("ui.tasks", workspace=workspace, task=task))
    return redirect(url_for("ui.run", run_id=state.id))


@bp.post("/tasks/<workspace>/exec")
@page("run")
def exec_adhoc(workspace):
    """The ad-hoc command form: a script run once on the workspace's files (runner/spec/adhoc.py)."""
    form = request.form
    values = {key: form.get(key, "") for key in ("name", "script", "timeout", "env", "ref", "ability", "tags", "image")}
    errors: dict[str, str] = {}
    env: dict[str, str] = {}
    for line in values["env"].splitlines():
        key, sep, value = line.partition("=")
        if line.strip() and not sep:
            errors["env"] = f"{line.strip()[:40]!r} is not KEY=VALUE"
        elif line.strip():
            env[key.strip()] = value
    timeout: Any = values["timeout"].strip() or "300"
    timeout = int(timeout) if timeout.isdigit() and len(timeout) < 6 else timeout
    adhoc = {
        "name": values["name"].strip() or "adhoc",
        "script": values["script"].replace("\r\n", "\n"),
        "timeout": timeout,
        "env": env,
        "ability": values["ability"] or "script",
        "tags": values["tags"].replace(",", " ").split(),
    }
    if values["image"].strip():
        adhoc["image"] = values["image"].strip()
    if not errors:
        count_start(signed_in().name, workspace)
        try:
            ref = values["ref"].strip() or None
            state = run_service.exec_run(current_service(), workspace, adhoc, by=signed_in().name, ref=ref)
            return redirect(url_for("ui.run", run_id=state.id))
        except InputError as exc:
            errors = exc.errors
        except StromError as exc:
            errors = {"ref": str(exc)}
    try:
        listing, triggers = _workspace_tasks(workspace)
    except StromError as exc:
        abort(404, description=str(exc))
    names = list(current_service().config.workspaces)
    page_ = {"typed": values, "errors": errors}
    return _tasks_page(workspace, names, listing, triggers, None, {}, {}, None, 422, adhoc=page_)
