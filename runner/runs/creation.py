"""Creating runs in the service: from the API, from triggers, as children, as hooks and as retries."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..engine import HOOK_TASK_PREFIX, HookCall, RunContext, RunState, RunStatus, hook_task, new_run
from ..engine.events import ChildFinished
from ..errors import InputError, StromError
from ..git.mirrors import GitError
from ..git.objects import is_sha
from ..spec.adhoc import exec_inputs, exec_task
from ..spec.patterns import PatternError, matching_names
from ..suggestions import suggest
from ..templating import Namespace, render_value
from .orchestrator import Conflict

if TYPE_CHECKING:
    from ..spec.model import Task, Trigger
    from .service import Service

__all__ = [
    "Batch",
    "NotFound",
    "create_child",
    "create_hooks",
    "exec_run",
    "execute",
    "load_definitions",
    "rerun",
    "retry",
    "start",
    "start_batch",
    "trigger_inputs",
]


_BRANCH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}")


class NotFound(StromError):
    status_hint = 404


def _workspace_config(service: Service, name: str):
    config = service.config.workspaces.get(name)
    if config is None:
        hint = suggest(name, service.config.workspaces)
        raise NotFound(
            f"no workspace {name!r}"
            + (f"; {hint}" if hint else "")
            + f" (workspaces: {', '.join(service.config.workspaces) or 'none configured'})"
        )
    return config


def load_definitions(service: Service, workspace: str, fetch: bool = False):
    """The workspace's current definitions (a Checkout): its folder, or its default branch's head commit.

    `fetch` asks the remote for the newest head first. Raises NotFound, SpecError or GitError."""
    return service.checkouts.head(_workspace_config(service, workspace), fetch=fetch)


def _task(loaded, name: str):
    task = loaded.tasks.get(name)
    if task is None:
        hint = suggest(name, loaded.tasks)
        raise NotFound(
            f"no task {name!r}"
            + (f"; {hint}" if hint else "")
            + f" (tasks: {', '.join(sorted(loaded.tasks)) or 'none'})"
        )
    return task


def _create(service: Service, state: RunState, ctx: RunContext) -> RunState:
    return service.orchestrator.create(state, ctx).state


def execute(
    service: Service,
    workspace: str,
    task: str,
    inputs: Mapping[str, Any],
    *,
    source: str = "api",
    trigger: str | None = None,
    event: Mapping | None = None,
    by: str | None = None,
    allow_extra: bool = False,
    job_id: str | None = None,
    fetch: bool = False,
) -> RunState:
    """Start a run of `task` on the workspace's current definitions (fetched first when people ask, or `fetch`).
    Raises NotFound, SpecError or InputError."""
    checkout = load_definitions(service, workspace, fetch=fetch or source in ("api", "ui"))  # people want the newest
    if event is None:
        event = {"kind": "manual", "actor": by or source}
    return start(
        service,
        workspace,
        checkout,
        task,
        inputs,
        source=source,
        trigger=trigger,
        event=event,
        allow_extra=allow_extra,
        job_id=job_id,
    )


def start(
    service: Service,
    workspace: str,
    checkout,
    task: str,
    inputs: Mapping[str, Any],
    *,
    source: str,
    trigger: str | None = None,
    event: Mapping | None = None,
    allow_extra: bool = False,
    job_id: str | None = None,
    trusted: bool = True,
    group: str | None = None,
    definition: Task | None = None,
) -> RunState:
    """Create and start a run of `task` from `checkout` (a Checkout), or of `definition` (a task made for the run,
    taking any inputs). Raises NotFound, InputError or Conflict."""
    allow_extra = allow_extra or definition is not None
    definition = definition or _task(checkout.workspace, task)
    provisional = RunState(
        id="", workspace=workspace, task=task, created_at=0, definitions=checkout.digest, trusted=trusted
    )
    ctx = RunContext(checkout.workspace, definition, service.contexts.for_run(provisional, checkout.workspace))
    state = new_run(
        ctx,
        inputs=inputs,
        now=time.time(),
        job_id=job_id,
        workspace=workspace,
        source=source,
        trigger=trigger,
        event=event,
        git=checkout.git,
        commit=checkout.commit,
        allow_extra_inputs=allow_extra,
    )
    snapshot = checkout.materialise(service.repos.snapshots)
    state = replace(state, definitions=checkout.digest, snapshot=str(snapshot), trusted=trusted, group=group)
    return _create(service, state, service.contexts.for_state(state))


@dataclass
class Batch:
    """What a batch started: its runs, and why each other matching task did not start."""

    pattern: str
    runs: list[RunState]
    refused: dict[str, str]  # task -> why it did not start


def start_batch(
    service: Service, workspace: str, pattern: str, inputs: Mapping[str, Any], *, by: str, source: str = "api"
) -> Batch:
    """Start every task of the workspace `pattern` matches (runner/spec/patterns.py) on its current
    definitions; each task gets the inputs it declares. Raises NotFound, InputError, SpecError or GitError."""
    checkout = load_definitions(service, workspace, fetch=True)
    try:
        names = matching_names(pattern, checkout.workspace.tasks)
    except PatternError as exc:
        raise InputError("batch", {"pattern": str(exc)}) from None
    if not names:
        raise NotFound(
            f"pattern {pattern!r} matches no task (tasks: {', '.join(sorted(checkout.workspace.tasks)) or 'none'})"
        )
    batch = Batch(pattern, [], {})
    event = {"kind": "manual", "actor": by, "batch": pattern}
    for name in names:
        declared = checkout.workspace.tasks[name].input
        own = {key: value for key, value in inputs.items() if key in declared}
        try:
            batch.runs.append(start(service, workspace, checkout, name, own, source=source, event=event))
        except InputError as exc:
            batch.refused[name] = "; ".join(f"{key}: {why}" for key, why in exc.errors.items())
    return batch


def exec_run(
    service: Service, workspace: str, request: Mapping[str, Any], *, by: str, ref: str | None = None
) -> RunState:
    """Start an ad-hoc run (runner/spec/adhoc.py) on the workspace's current definitions, or those of `ref` (a
    branch or a full commit name). Raises NotFound, InputError, SpecError or GitError."""
    inputs = exec_inputs(request)
    config = _workspace_config(service, workspace)
    if ref is None:
        checkout = service.checkouts.head(config)
    elif config.kind == "folder":
        raise InputError("exec", {"ref": f"workspace {workspace!r} is a folder: it has no branches or commits"})
    elif is_sha(ref):
        mirror = service.repos.mirror(config)
        if not mirror.has(ref):
            mirror.fetch(config.default_branch)
        if not mirror.has(ref):
            raise NotFound(f"no commit {ref} in workspace {workspace!r}")
        checkout = service.checkouts.commit(config, ref)
    elif not _BRANCH.fullmatch(ref) or ".." in ref:
        raise InputError("exec", {"ref": f"{ref[:60]!r} is neither a branch name nor a full commit name"})
    else:
        try:
            checkout = service.checkouts.head(config, branch=ref)
        except GitError:
            if ref not in service.repos.mirror(config).remote_heads():
                raise NotFound(f"workspace {workspace!r} has no branch {ref!r}") from None
            raise
    definition = exec_task(inputs)
    event = {"kind": "manual", "actor": by}
    return start(
        service, workspace, checkout, definition.name, inputs, source="exec", event=event, definition=definition
    )


def _snapshot_of(service: Service, old: RunState) -> str | None:
    """The old run's snapshot, written again if it was collected since (its commit is still in the mirror)."""
    from pathlib import Path

    ws = service.config.workspaces.get(old.workspace)
    if old.snapshot and old.commit and ws is not None and ws.is_git and not Path(old.snapshot).is_dir():
        return str(service.repos.snapshots.materialise(service.repos.mirror(ws), old.commit))
    return old.snapshot


def rerun(service: Service, run_id: str, by: str | None = None, job_id: str | None = None) -> RunState:
    """A new run of the same task with the same inputs, definitions and commit. Raises NotFound, or
    Conflict when `job_id` (given to make a repeated request start one run) exists."""
    old = service.runs.load(run_id)
    if old is None:
        raise NotFound(f"no run {run_id}")
    state = _repeat(service, old, job_id, "rerun")
    return _create(service, state, service.contexts.for_state(state))


def create_child(service: Service, message: dict) -> None:
    """Create and start the child run a task-action step asked for; report failure to create it to the parent."""
    parent = service.runs.load(message["job"])
    if parent is None or service.runs.exists(message["child"]):
        return
    owner = message.get("workspace")
    if owner and owner != parent.workspace:
        _create_elsewhere(service, parent, message, owner)
        return
    base = service.contexts.for_state(parent)
    task = base.workspace.tasks.get(message["task"])
    if task is None:
        _start_child(service, parent, message, None, f"task {message['task']!r} does not exist")
        return
    ctx = RunContext(base.workspace, task, base.secrets, job_url=base.job_url)
    try:
        state = _child_run(ctx, parent, message, parent.workspace, parent.git, parent.commit)
    except InputError as exc:
        _start_child(service, parent, message, None, str(exc))
        return
    state = replace(
        state, definitions=parent.definitions, snapshot=parent.snapshot, event=parent.event, trusted=parent.trusted
    )
    _start_child(service, parent, message, state)


def _create_elsewhere(service: Service, parent: RunState, message: dict, owner: str) -> None:
    """A step's cross-workspace action (`owner.action`): a one-step child run in the owner workspace, on its
    newest definitions and files, with its secrets (withheld for an untrusted pull request's run, as always)."""
    name = str(message["task"]).removeprefix(HOOK_TASK_PREFIX)
    try:
        checkout = load_definitions(service, owner)
        action = checkout.workspace.actions.get(name)
        if action is None:
            hint = suggest(name, checkout.workspace.actions)
            raise NotFound(f"workspace {owner!r} has no action {name!r}" + (f"; {hint}" if hint else ""))
        task = hook_task(HookCall(name, action, message["inputs"]), checkout.workspace)
        ctx = RunContext(checkout.workspace, task, {})
        state = _child_run(ctx, parent, message, owner, checkout.git, checkout.commit, allow_extra_inputs=True)
        snapshot = checkout.materialise(service.repos.snapshots)
    except StromError as exc:  # no such workspace or action, its definitions invalid, inputs refused
        _start_child(service, parent, message, None, f"{owner}.{name}: {exc}")
        return
    state = replace(
        state, definitions=checkout.digest, snapshot=str(snapshot), event=parent.event, trusted=parent.trusted
    )
    _start_child(service, parent, message, state)


def _child_run(ctx: RunContext, parent: RunState, message: dict, workspace: str, git, commit, **more) -> RunState:
    """The child run `message` asks for, in `workspace` (raises InputError on inputs its task refuses)."""
    return new_run(
        ctx,
        inputs=message["inputs"],
        now=time.time(),
        job_id=message["child"],
        workspace=workspace,
        source="child",
        depth=message["depth"],
        parent_job=parent.id,
        parent_step=message["step"],
        git=git,
        commit=commit,
        from_templates=True,  # the parent's step rendered them
        **more,
    )


def _start_child(
    service: Service, parent: RunState, message: dict, state: RunState | None, error: str | None = None
) -> None:
    """Start the child `state`, or, when there is none, fail the parent's step with `error`."""
    if state is None:
        event = ChildFinished(message["step"], message["child"], RunStatus.FAILED, error=error)
        service.orchestrator.try_apply(parent.id, event)
        return
    try:
        _create(service, state, service.contexts.for_state(state))
    except Conflict:
        pass


def create_hooks(service: Service, message: dict) -> list[str]:
    """Create the hook runs of a finished (or suspended) run. Hook failures never reach the run."""
    origin = service.runs.load(message["job"])
    if origin is None:
        return []
    base = service.contexts.for_state(origin)
    created = []
    for index, call in enumerate(message["calls"]):
        if call.get("error"):
            continue
        action = base.workspace.actions.get(call["action"])
        if action is None:
            continue
        job_id = uuid.uuid5(uuid.NAMESPACE_URL, f"strom-hook:{origin.id}:{message['event']}:{index}").hex[:16]
        if service.runs.exists(job_id):
            continue
        task = hook_task(HookCall(call["action"], action, call["inputs"]), base.workspace)
        ctx = RunContext(base.workspace, task, base.secrets)
        try:
            state = new_run(
                ctx,
                inputs=call["inputs"],
                now=time.time(),
                job_id=job_id,
                workspace=origin.workspace,
                source="hook",
                trigger=f"{origin.task}/{message['event']}",
                git=origin.git,
                commit=origin.commit,
                allow_extra_inputs=True,
            )
        except InputError:
            continue
        state = replace(state, definitions=origin.definitions, snapshot=origin.snapshot, trusted=origin.trusted)
        try:
            _create(service, state, service.contexts.for_state(state))
            created.append(job_id)
        except Conflict:
            pass
    return created


def retry(service: Service, message: dict) -> str | None:
    """The next attempt of a failed run (task-level retry)."""
    old = service.runs.load(message["job"])
    if old is None:
        return None
    job_id = uuid.uuid5(uuid.NAMESPACE_URL, f"strom-retry:{old.id}:{message['attempt']}").hex[:16]
    state = _repeat(service, old, job_id, old.source, attempt=message["attempt"], group=old.group)
    try:
        _create(service, state, service.contexts.for_state(state))
    except Conflict:
        return None
    return job_id


def _repeat(
    service: Service, old: RunState, job_id: str | None, source: str, attempt: int = 1, group: str | None = None
) -> RunState:
    """A new run of `old`'s task with its inputs, event, commit, definitions, snapshot and trust."""
    state = new_run(
        service.contexts.for_state(old),
        inputs=old.inputs,
        now=time.time(),
        job_id=job_id,
        workspace=old.workspace,
        source=source,
        trigger=old.trigger,
        event=old.event,
        git=old.git,
        commit=old.commit,
        attempt=attempt,
        retry_of=old.id,
        allow_extra_inputs=True,
    )
    snapshot = _snapshot_of(service, old)
    return replace(state, definitions=old.definitions, snapshot=snapshot, trusted=old.trusted, group=group)


def trigger_inputs(
    trigger: Trigger, event: Mapping[str, Any], git: Mapping[str, Any] | None, **more: Any
) -> dict[str, Any]:
    """A trigger's `input` rendered over the event that fired it, its commit's `git` and `more` names."""
    context = {"event": Namespace("event", event), "git": Namespace("git", git or {}), **more}
    return render_value(dict(trigger.input), context, f"{trigger.location} (trigger {trigger.name!r})")
